//! The Debian package (scripts/build-deb.sh): it holds the binary, the systemd unit, the
//! default config and environment file as conffiles, the runners and the docs; its postinst
//! creates the service user (the test reads it: installing would change the test machine);
//! and the packaged binary accepts the packaged config. The binary is stripped; its debug
//! information is in the firehosed-dbgsym package beside it, under its build ID.

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
    stripped_with_its_symbols_beside_it(&deb, &r.join("usr/bin/firehosed"));
}

/// No debug sections or symbol table in the packaged binary; the -dbgsym package holds them
/// at /usr/lib/debug/.build-id/NN/REST.debug of the binary's own build ID.
fn stripped_with_its_symbols_beside_it(deb: &str, binary: &std::path::Path) {
    let sections = |file: &std::path::Path| {
        let out = run_output(Command::new("readelf").arg("-S").arg("-W").arg(file));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let packaged = sections(binary);
    assert!(
        !packaged.contains(".debug_info")
            && !packaged.contains(".debug_line")
            && !packaged.contains(".symtab"),
        "the packaged binary is not stripped:\n{packaged}"
    );
    let notes = run_output(Command::new("readelf").arg("-n").arg(binary));
    let notes = String::from_utf8_lossy(&notes.stdout).into_owned();
    let id = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .expect("a build ID")
        .to_string();
    let deb = std::path::Path::new(deb);
    let name = deb.file_name().expect("a file name").to_string_lossy();
    let dbgsym = deb
        .with_file_name(name.replacen("firehosed_", "firehosed-dbgsym_", 1))
        .display()
        .to_string();
    let root = tempfile::tempdir().expect("tempdir");
    let x = run_output(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&dbgsym)
            .arg(root.path()),
    );
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let debug = root.path().join(format!(
        "usr/lib/debug/.build-id/{}/{}.debug",
        &id[..2],
        &id[2..]
    ));
    assert!(
        sections(&debug).contains(".debug_line"),
        "no line tables in {}",
        debug.display()
    );
    let info = run_output(Command::new("dpkg-deb").args(["--info", &dbgsym]));
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    assert!(
        info.contains("Package: firehosed-dbgsym") && info.contains(&id),
        "{info}"
    );
}
