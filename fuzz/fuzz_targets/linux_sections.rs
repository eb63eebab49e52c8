//! The Linux section parsers on their own (the body of one section), chosen
//! by the first byte. A body reaches them whole, so they get text the framing
//! parser would never produce as well.
#![no_main]
use fleetsweep::probes::linux::{self, processes, systemd};
use fleetsweep_fuzz::{selector, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = selector(data) else {
        return;
    };
    let body = text(rest);
    let body = body.as_str();
    match which % 16 {
        0 => drop(linux::parse_dpkg(body)),
        1 => drop(linux::parse_rpm(body)),
        2 => drop(linux::parse_apk(body)),
        3 => {
            // list-unit-files, list-units and unit files, separated by NULs.
            let mut parts = body.splitn(3, '\0');
            let (a, b, c) = (parts.next(), parts.next(), parts.next());
            drop(linux::parse_services(a, b, c));
        }
        4 => drop(linux::parse_unit_files(body)),
        5 => {
            let (mut procs, _) = linux::parse_processes(body);
            let mut parts = body.splitn(3, '\0');
            let (cmdlines, exes, owners) = (parts.next(), parts.next(), parts.next());
            processes::merge_batches(&mut procs, cmdlines, exes, owners);
            drop(processes::parse_proc_owners(body));
        }
        6 => drop(linux::parse_ps(body)),
        7 => drop(processes::parse_proc_cmdlines(body)),
        8 => drop(processes::parse_proc_exes(body)),
        9 => drop(linux::parse_os_release(body)),
        10 => drop(linux::parse_uname(body)),
        11 => drop(linux::parse_modules(body)),
        12 => drop(linux::parse_paths(body)),
        13 => {
            drop(linux::parse_kesl_app_info(body));
            let _ = linux::kesl::app_info_status(body);
        }
        14 => drop(systemd::exec_program(body)),
        _ => drop(linux::dpkg_state(body)),
    }
});
