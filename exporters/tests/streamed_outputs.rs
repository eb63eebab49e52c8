//! The report and the metrics page are written to their files as they are
//! serialized (a 100,000-host report is never one string): what reaches the
//! file must be exactly what the in-memory renderers give, hostile strings
//! included, and a failed write must leave the old file as it was.
#![allow(clippy::unwrap_used)]

mod support;

use fleetsweep_exporters::metrics::{self, MetricsOptions};
use fleetsweep_exporters::{file, yaml};

fn streamed_yaml(report: &fleetsweep_exporters::Report) -> Vec<u8> {
    let mut out = Vec::new();
    yaml::write_yaml(report, &mut out).unwrap();
    out
}

#[test]
fn the_streamed_report_equals_the_in_memory_rendering() {
    let fleet = support::fleet();
    assert_eq!(
        streamed_yaml(&fleet),
        yaml::to_yaml(&fleet).unwrap().into_bytes()
    );
    // Every host string hostile at once, in a one-host report.
    for value in [
        support::SCRIPT,
        support::FORMULA,
        support::MIXED,
        support::EVIL_HOST,
        "kesl\nhosts: []\n---\nreport_version: 2",
        "",
    ] {
        let mut r = support::fleet();
        r.hosts.to_mut().truncate(1);
        let h = &mut r.hosts.to_mut()[0];
        h.name = value.into();
        h.address = value.into();
        h.labels.insert("site".into(), value.into());
        h.error = Some(value.into());
        h.warnings = vec![value.into()];
        let text = yaml::to_yaml(&r).unwrap();
        assert_eq!(streamed_yaml(&r), text.as_bytes(), "{value:?}");
        assert_eq!(yaml::from_yaml(&text).unwrap(), r, "{value:?}");
    }
}

#[test]
fn the_streamed_metrics_page_equals_the_rendered_one() {
    let fleet = support::fleet();
    for opts in [
        MetricsOptions::default(),
        MetricsOptions {
            label_allowlist: vec!["site".into()],
            revision: "abc123".into(),
            remediations: [(("Kaspersky".into(), "KESL".into()), 3)].into(),
        },
    ] {
        let mut out = Vec::new();
        metrics::write(&fleet, &opts, &mut out).unwrap();
        let page = metrics::render(&fleet, &opts).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), page);
        assert!(page.contains("fleetsweep_host_finding{"), "{page}");
    }
}

#[test]
fn a_failed_streamed_write_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.yaml");
    file::write_atomic_with(&path, |w| w.write_all(b"old\n")).unwrap();
    let err = file::write_atomic_with(&path, |w| {
        w.write_all(b"half of a new rep")?;
        Err(std::io::Error::other("the serializer gave up"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "the serializer gave up");
    assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left behind");
    // A large streamed file arrives whole.
    let fleet = support::fleet();
    file::write_atomic_with(&path, |w| yaml::write_yaml(&fleet, w)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        yaml::to_yaml(&fleet).unwrap()
    );
}

/// The writer's own error comes back as it was, so a full disk is still
/// explained as one (not as a serializer message).
#[test]
fn a_full_disk_under_the_yaml_writer_is_still_a_full_disk() {
    let mut full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let err = yaml::write_yaml(&support::fleet(), &mut full).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "{err}");
    assert!(file::explain(err)
        .to_string()
        .starts_with("the disk is full"));
    let err = metrics::write(&support::fleet(), &MetricsOptions::default(), &mut full).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "{err}");
}
