//! The Debian package (scripts/build-deb.sh): it holds the binary, the systemd unit, the
//! default config and environment file as conffiles, the runners and the docs; its postinst
//! creates the service user (the test reads it: installing would change the test machine);
//! and the packaged binary accepts the packaged config.

use std::process::Command;

use crate::support::*;

#[test]
fn the_deb_holds_the_binary_unit_conffiles_and_a_postinst_that_creates_the_user() {
    let out = tempfile::tempdir().expect("tempdir");
    let deb = build_deb(out.path()).display().to_string();
    assert!(
        deb.ends_with(".deb") && deb.contains("firehosed_0."),
        "{deb}"
    );

    let info = run_output(Command::new("dpkg-deb").args(["--info", &deb]));
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    for needle in ["Package: firehosed", "Version: 0.", "conffiles", "postinst"] {
        assert!(info.contains(needle), "missing {needle} in:\n{info}");
    }
    let conffiles = run_output(Command::new("dpkg-deb").args(["-I", &deb, "conffiles"]));
    assert_eq!(
        String::from_utf8_lossy(&conffiles.stdout),
        "/etc/firehosed/firehosed.yaml\n/etc/firehosed/firehosed.env\n"
    );
    let postinst = run_output(Command::new("dpkg-deb").args(["-I", &deb, "postinst"]));
    let postinst = String::from_utf8_lossy(&postinst.stdout).into_owned();
    assert!(postinst.contains("adduser --system --group"), "{postinst}");

    let root = tempfile::tempdir().expect("tempdir");
    let x = run_output(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(root.path()),
    );
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let r = root.path();
    for file in [
        "usr/bin/firehosed",
        "lib/systemd/system/firehosed.service",
        "etc/firehosed/firehosed.yaml",
        "etc/firehosed/firehosed.env",
        "usr/share/doc/firehosed/README.md",
        "usr/share/doc/firehosed/docs/configuration.md",
        "usr/share/firehosed/runners/python/firehosed_runner.py",
    ] {
        assert!(r.join(file).exists(), "the package lacks {file}");
    }
    assert_eq!(
        std::fs::read(r.join("lib/systemd/system/firehosed.service")).expect("unit"),
        std::fs::read(repo().join("systemd/firehosed.service")).expect("unit"),
        "the packaged unit is the bundled one"
    );
    // The packaged binary accepts the packaged configuration, and it matches the unit's
    // StateDirectory.
    let validate = run_output(
        Command::new(r.join("usr/bin/firehosed"))
            .args(["validate", "--config"])
            .arg(r.join("etc/firehosed/firehosed.yaml")),
    );
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let config = std::fs::read_to_string(r.join("etc/firehosed/firehosed.yaml")).expect("config");
    assert!(config.contains("state_dir: /var/lib/firehosed"), "{config}");
}
