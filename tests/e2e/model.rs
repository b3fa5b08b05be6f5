//! The service model firehosed checks requests against (model/firehose-2015-08-04.json) is
//! AWS's own, unchanged: the same JSON as the pinned botocore ships (tests/requirements.txt),
//! so moving the pin moves the model, and a hand edit fails here.

use crate::support::*;

#[test]
fn the_vendored_service_model_is_the_pinned_botocores() {
    let script = r#"
import gzip, json, os, sys, botocore
path = os.path.join(os.path.dirname(botocore.__file__), "data", "firehose", "2015-08-04", "service-2.json.gz")
with gzip.open(path) as f:
    theirs = json.load(f)
with open(sys.argv[1]) as f:
    ours = json.load(f)
print(botocore.__version__)
sys.exit(0 if theirs == ours else 3)
"#;
    let out = run_output(
        std::process::Command::new(python())
            .args(["-c", script])
            .arg(repo().join("model/firehose-2015-08-04.json")),
    );
    assert!(
        out.status.success(),
        "model/firehose-2015-08-04.json differs from botocore {}'s (copy botocore's \
         data/firehose/2015-08-04/service-2.json.gz, gunzipped): {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr)
    );
}
