//! Remediation status of one (host, rule), derived from what the store
//! remembers and what this sweep saw (docs/statuses.md). Pure: no I/O, no clock.
//!
//! | before                  | this sweep                     | status                           |
//! |-------------------------|--------------------------------|----------------------------------|
//! | never seen              | present                        | `new` (always, on first sight)   |
//! | seen, not remediated    | present, exception active      | `excepted`                       |
//! | remediated              | present                        | `reinstalled` (new grace period) |
//! | seen, not remediated    | present, past due (`ban`)      | `overdue`                        |
//! | seen as `watch`         | present, now `ban`             | `open` (new grace period)        |
//! | seen, not remediated    | present                        | `open`                           |
//! | seen, not remediated    | absent in a successful scan    | `remediated` (reported once)     |
//! | remediated              | absent                         | not reported any more            |
//! | seen, not remediated    | host not scanned               | `unverified` (last known finding)|
//! | never seen / remediated | host not scanned               | nothing                          |
//!
//! A `watch` product (catalog `policy: watch`) is tracked the same way but is
//! never `overdue`: nobody has to remove it, so past its due date it stays
//! `open` and no alert pages for it. Once the catalog bans it, its due date
//! counts from the first sweep that sees it banned.
//!
//! On first sight an active exception is attached to the `new` finding (so
//! the exit code accepts it, see `app::scan`), and the status becomes
//! `excepted` from the next sweep on. A reinstall starts a new episode: the
//! due date counts from the reinstall, `first_seen` keeps the first sighting.
//!
//! [`mark_replaced`] then looks at one host's findings together: a product
//! found gone while an installed successor (catalog `replaces:`) is there was
//! replaced by it, not just removed (UltraAV after the Kaspersky ban).

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use fleetsweep_exporters::{ExceptionRef, Finding, FindingState, Policy, Status};

/// What the store remembers of one (host, rule) between sweeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// First sighting ever.
    pub first_seen: Timestamp,
    /// Start of the current episode (first sighting, or the last reinstall):
    /// the due date counts from here.
    pub since: Timestamp,
    /// Last successful scan that saw it.
    pub last_seen: Timestamp,
    /// Status of the last sweep that scanned the host.
    pub status: Status,
    /// Set while it is gone (found absent by a successful scan).
    pub remediated_at: Option<Timestamp>,
    /// The finding as last reported: carried for `remediated` and `unverified`.
    pub finding: Finding,
}

/// What this sweep saw of one (host, rule).
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// The host was scanned and the rule matched.
    Present(&'a Finding),
    /// The host was scanned completely and the rule did not match.
    Absent,
    /// The host was not scanned (or its scan was incomplete), so absence proves nothing.
    NotScanned {
        /// Last successful scan of the host.
        last_verified: Option<Timestamp>,
    },
}

/// Everything the derivation needs besides the history.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Timestamp,
    /// Days from the start of an episode to its due date (catalog `grace_days`).
    pub grace_days: u32,
    /// The active exception covering this (host, rule), if any.
    pub exception: Option<&'a ExceptionRef>,
}

/// The result for one (host, rule).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The finding to report this sweep, with its status; `None` when there is nothing to say.
    pub finding: Option<Finding>,
    /// What to remember; `None` when there was nothing and still is nothing.
    pub track: Option<Track>,
    /// Set when this sweep found it gone: (episode start, remediated_at).
    pub remediation: Option<(Timestamp, Timestamp)>,
}

/// UTC calendar day of a timestamp.
pub fn day(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// `since + grace` as a calendar date (saturating at the end of the calendar).
pub fn due_date(since: Timestamp, grace_days: u32) -> Date {
    let d = day(since);
    jiff::Span::new()
        .try_days(i64::from(grace_days))
        .ok()
        .and_then(|span| d.checked_add(span).ok())
        .unwrap_or(Date::MAX)
}

/// The status rule of docs/statuses.md; see the module table.
pub fn derive(prev: Option<&Track>, obs: Observation<'_>, cx: &Context<'_>) -> Derived {
    let now = cx.now;
    match (prev, obs) {
        (None, Observation::Present(f)) => {
            let mut f = f.clone();
            f.status = Status::New;
            f.first_seen = now;
            f.last_seen = Some(now);
            f.due = Some(due_date(now, cx.grace_days));
            f.remediated_at = None;
            f.last_verified = None;
            f.exception = cx.exception.cloned();
            Derived {
                track: Some(Track {
                    first_seen: now,
                    since: now,
                    last_seen: now,
                    status: Status::New,
                    remediated_at: None,
                    finding: f.clone(),
                }),
                finding: Some(f),
                remediation: None,
            }
        }
        (Some(t), Observation::Present(f)) => {
            let reinstalled = t.remediated_at.is_some();
            // A product the catalog banned since the last sweep (it was only
            // watched) gets its grace period from now, as a first sighting would.
            let newly_banned = t.finding.policy == Policy::Watch && f.policy == Policy::Ban;
            let since = if reinstalled || newly_banned {
                now
            } else {
                t.since
            };
            let due = due_date(since, cx.grace_days);
            let status = if cx.exception.is_some() {
                Status::Excepted
            } else if reinstalled {
                Status::Reinstalled
            } else if day(now) > due && f.policy != Policy::Watch {
                Status::Overdue
            } else {
                Status::Open
            };
            let mut f = f.clone();
            f.status = status;
            f.first_seen = t.first_seen;
            f.last_seen = Some(now);
            f.due = Some(due);
            f.remediated_at = None;
            f.last_verified = None;
            f.exception = cx.exception.cloned();
            Derived {
                track: Some(Track {
                    first_seen: t.first_seen,
                    since,
                    last_seen: now,
                    status,
                    remediated_at: None,
                    finding: f.clone(),
                }),
                finding: Some(f),
                remediation: None,
            }
        }
        (None, Observation::Absent | Observation::NotScanned { .. }) => Derived {
            finding: None,
            track: None,
            remediation: None,
        },
        (Some(t), Observation::Absent) if t.remediated_at.is_none() => {
            let mut f = t.finding.clone();
            f.status = Status::Remediated;
            f.first_seen = t.first_seen;
            f.last_seen = Some(t.last_seen);
            f.due = Some(due_date(t.since, cx.grace_days));
            f.remediated_at = Some(now);
            f.last_verified = None;
            f.exception = None;
            Derived {
                track: Some(Track {
                    status: Status::Remediated,
                    remediated_at: Some(now),
                    finding: f.clone(),
                    ..t.clone()
                }),
                finding: Some(f),
                remediation: Some((t.since, now)),
            }
        }
        (Some(t), Observation::NotScanned { last_verified }) if t.remediated_at.is_none() => {
            let mut f = t.finding.clone();
            f.status = Status::Unverified;
            f.first_seen = t.first_seen;
            f.last_seen = Some(t.last_seen);
            f.due = Some(due_date(t.since, cx.grace_days));
            f.remediated_at = None;
            f.last_verified = last_verified;
            f.exception = None;
            // The host said nothing: remember what it last said, unchanged.
            Derived {
                finding: Some(f),
                track: Some(t.clone()),
                remediation: None,
            }
        }
        // Remediated earlier and still absent (or not scanned): reported once
        // already, nothing more to say; the track stays so a return is `reinstalled`.
        (Some(t), _) => Derived {
            finding: None,
            track: Some(t.clone()),
            remediation: None,
        },
    }
}

/// Marks findings remediated in this sweep as `replaced` when the host now has
/// an installed finding of a product that replaces them: Kaspersky was seen
/// before and its successor is there now. `replaces(successor, rule)` says
/// whether the successor's rule `replaces:` the rule (the catalog's globs).
/// Status stays `remediated`: the banned product is gone either way; the state
/// tells the fleet owner what took its place.
pub fn mark_replaced(findings: &mut [Finding], replaces: impl Fn(&str, &str) -> bool) {
    let successors: Vec<String> = findings
        .iter()
        .filter(|f| f.state == FindingState::Installed && f.status != Status::Remediated)
        .map(|f| f.rule.clone())
        .collect();
    if successors.is_empty() {
        return;
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.status == Status::Remediated)
    {
        if successors
            .iter()
            .any(|s| *s != f.rule && replaces(s, &f.rule))
        {
            f.state = FindingState::Replaced;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use fleetsweep_exporters::{Evidence, FindingState};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn finding(seen: Timestamp) -> Finding {
        Finding {
            rule: "kaspersky/kesl".into(),
            vendor: "Kaspersky".into(),
            product: "Kaspersky Endpoint Security for Linux".into(),
            policy: Policy::Ban,
            state: FindingState::Installed,
            status: Status::New,
            version: Some("12.1.0-1297".into()),
            first_seen: seen,
            last_seen: Some(seen),
            due: None,
            remediated_at: None,
            last_verified: None,
            exception: None,
            signatures: None,
            effective: None,
            deadline: Some("2024-09-29".parse().unwrap()),
            evidence: vec![Evidence {
                kind: "package".into(),
                source: Some("dpkg".into()),
                value: "kesl 12.1.0-1297".into(),
            }],
            containers: Vec::new(),
            remediation: None,
        }
    }

    fn exception() -> ExceptionRef {
        ExceptionRef {
            source: "ex.yaml:2".into(),
            reason: "lab".into(),
            approver: "ciso".into(),
            expires: "2027-03-31".parse().unwrap(),
        }
    }

    fn cx(now: &str) -> Context<'static> {
        Context {
            now: ts(now),
            grace_days: 30,
            exception: None,
        }
    }

    const T0: &str = "2026-11-01T06:00:00Z";

    /// The track after a first sighting at T0.
    fn seen_at_t0() -> Track {
        let f = finding(ts(T0));
        derive(None, Observation::Present(&f), &cx(T0))
            .track
            .unwrap()
    }

    #[test]
    fn first_sight_is_new_with_due_date() {
        let f = finding(ts(T0));
        let d = derive(None, Observation::Present(&f), &cx(T0));
        let out = d.finding.unwrap();
        assert_eq!(out.status, Status::New);
        assert_eq!(out.first_seen, ts(T0));
        assert_eq!(out.due, Some("2026-12-01".parse().unwrap()));
        assert_eq!(d.track.unwrap().since, ts(T0));
        assert!(d.remediation.is_none());
    }

    #[test]
    fn first_sight_wins_over_exception_and_legal_dates() {
        // The catalog deadline (2024) is long past: still `new`, not overdue.
        let f = finding(ts(T0));
        let ex = exception();
        let c = Context {
            exception: Some(&ex),
            ..cx(T0)
        };
        let out = derive(None, Observation::Present(&f), &c).finding.unwrap();
        assert_eq!(out.status, Status::New);
        assert_eq!(out.exception, Some(ex));
    }

    #[test]
    fn still_present_is_open_until_due_then_overdue() {
        let t = seen_at_t0();
        let f = finding(ts("2026-11-02T06:00:00Z"));
        let open = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2026-11-02T06:00:00Z"),
        );
        let out = open.finding.unwrap();
        assert_eq!(out.status, Status::Open);
        assert_eq!(out.first_seen, ts(T0), "first_seen is the first sighting");
        assert_eq!(out.last_seen, Some(ts("2026-11-02T06:00:00Z")));
        // the due day itself is not yet overdue
        let on_due = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2026-12-01T23:59:59Z"),
        );
        assert_eq!(on_due.finding.unwrap().status, Status::Open);
        let after = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2026-12-02T00:00:00Z"),
        );
        assert_eq!(after.finding.unwrap().status, Status::Overdue);
        assert_eq!(after.track.unwrap().status, Status::Overdue);
    }

    #[test]
    fn grace_days_come_from_the_rule() {
        let t = seen_at_t0();
        let f = finding(ts(T0));
        let c = Context {
            grace_days: 0,
            ..cx("2026-11-02T00:00:00Z")
        };
        let out = derive(Some(&t), Observation::Present(&f), &c)
            .finding
            .unwrap();
        assert_eq!(out.status, Status::Overdue);
        assert_eq!(out.due, Some("2026-11-01".parse().unwrap()));
    }

    #[test]
    fn active_exception_makes_it_excepted_even_when_overdue() {
        let t = seen_at_t0();
        let f = finding(ts(T0));
        let ex = exception();
        let c = Context {
            exception: Some(&ex),
            ..cx("2027-01-15T00:00:00Z")
        };
        let out = derive(Some(&t), Observation::Present(&f), &c)
            .finding
            .unwrap();
        assert_eq!(out.status, Status::Excepted);
        assert_eq!(out.exception, Some(ex));
        // without it (expired), it is overdue again
        let out = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2027-04-15T00:00:00Z"),
        )
        .finding
        .unwrap();
        assert_eq!(out.status, Status::Overdue);
        assert_eq!(out.exception, None);
    }

    #[test]
    fn absent_in_a_successful_scan_is_remediated_once() {
        let t = seen_at_t0();
        let now = "2026-11-10T06:00:00Z";
        let d = derive(Some(&t), Observation::Absent, &cx(now));
        let out = d.finding.unwrap();
        assert_eq!(out.status, Status::Remediated);
        assert_eq!(out.remediated_at, Some(ts(now)));
        assert_eq!(out.last_seen, Some(ts(T0)));
        assert_eq!(out.evidence, t.finding.evidence, "last known evidence");
        assert_eq!(d.remediation, Some((ts(T0), ts(now))));
        let t2 = d.track.unwrap();
        assert_eq!(t2.remediated_at, Some(ts(now)));
        // the next sweep: still gone, not reported, no second remediation event
        let d = derive(Some(&t2), Observation::Absent, &cx("2026-11-11T06:00:00Z"));
        assert_eq!(d.finding, None);
        assert_eq!(d.remediation, None);
        assert_eq!(d.track, Some(t2));
    }

    #[test]
    fn back_after_remediation_is_reinstalled_with_a_new_grace_period() {
        let t = seen_at_t0();
        let gone = derive(Some(&t), Observation::Absent, &cx("2026-11-10T06:00:00Z"))
            .track
            .unwrap();
        let now = "2027-02-01T06:00:00Z";
        let f = finding(ts(now));
        let d = derive(Some(&gone), Observation::Present(&f), &cx(now));
        let out = d.finding.unwrap();
        assert_eq!(out.status, Status::Reinstalled);
        assert_eq!(out.first_seen, ts(T0));
        assert_eq!(out.due, Some("2027-03-03".parse().unwrap()));
        assert_eq!(out.remediated_at, None);
        let t3 = d.track.unwrap();
        assert_eq!(t3.since, ts(now));
        // one sweep later it is an open finding of the new episode
        let later = derive(
            Some(&t3),
            Observation::Present(&f),
            &cx("2027-02-02T06:00:00Z"),
        );
        assert_eq!(later.finding.unwrap().status, Status::Open);
    }

    #[test]
    fn not_scanned_carries_the_last_known_finding_as_unverified() {
        let t = seen_at_t0();
        let lv = ts(T0);
        let d = derive(
            Some(&t),
            Observation::NotScanned {
                last_verified: Some(lv),
            },
            &cx("2026-11-05T06:00:00Z"),
        );
        let out = d.finding.unwrap();
        assert_eq!(out.status, Status::Unverified);
        assert_eq!(out.last_verified, Some(lv));
        assert_eq!(out.first_seen, ts(T0));
        assert_eq!(out.evidence, t.finding.evidence);
        assert_eq!(d.track, Some(t.clone()), "the history is not touched");
        assert_eq!(d.remediation, None);
        // when the host is back and the product still there: open, not new
        let f = finding(ts(T0));
        let back = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2026-11-06T06:00:00Z"),
        );
        assert_eq!(back.finding.unwrap().status, Status::Open);
    }

    #[test]
    fn exceptions_do_not_apply_to_unverified_or_remediated() {
        let t = seen_at_t0();
        let ex = exception();
        let c = Context {
            exception: Some(&ex),
            ..cx("2026-11-05T06:00:00Z")
        };
        let out = derive(
            Some(&t),
            Observation::NotScanned {
                last_verified: None,
            },
            &c,
        )
        .finding
        .unwrap();
        assert_eq!(out.status, Status::Unverified);
        assert_eq!(out.exception, None);
        let out = derive(Some(&t), Observation::Absent, &c).finding.unwrap();
        assert_eq!(out.status, Status::Remediated);
    }

    #[test]
    fn nothing_before_and_nothing_now_is_nothing() {
        for obs in [
            Observation::Absent,
            Observation::NotScanned {
                last_verified: None,
            },
        ] {
            let d = derive(None, obs, &cx(T0));
            assert_eq!(
                d,
                Derived {
                    finding: None,
                    track: None,
                    remediation: None
                }
            );
        }
    }

    #[test]
    fn remediated_and_not_scanned_stays_quiet() {
        let t = seen_at_t0();
        let gone = derive(Some(&t), Observation::Absent, &cx("2026-11-10T06:00:00Z"))
            .track
            .unwrap();
        let d = derive(
            Some(&gone),
            Observation::NotScanned {
                last_verified: None,
            },
            &cx("2026-11-11T06:00:00Z"),
        );
        assert_eq!(d.finding, None);
        assert_eq!(d.track, Some(gone));
    }

    /// UltraAV replaces `kaspersky/*` (as in the built-in catalog).
    fn ultraav_replaces(successor: &str, rule: &str) -> bool {
        successor == "ultraav/ultraav" && rule.starts_with("kaspersky/")
    }

    fn ultraav(state: FindingState, status: Status) -> Finding {
        Finding {
            rule: "ultraav/ultraav".into(),
            vendor: "UltraAV".into(),
            product: "UltraAV".into(),
            policy: Policy::Watch,
            state,
            status,
            ..finding(ts(T0))
        }
    }

    #[test]
    fn remediated_next_to_an_installed_successor_is_replaced() {
        let t = seen_at_t0();
        let now = "2026-11-10T06:00:00Z";
        let gone = derive(Some(&t), Observation::Absent, &cx(now))
            .finding
            .unwrap();
        let mut findings = vec![gone.clone(), ultraav(FindingState::Installed, Status::New)];
        mark_replaced(&mut findings, ultraav_replaces);
        assert_eq!(findings[0].state, FindingState::Replaced);
        assert_eq!(findings[0].status, Status::Remediated, "status unchanged");
        assert_eq!(findings[0].remediated_at, Some(ts(now)));
        assert_eq!(findings[1].state, FindingState::Installed);

        // Not replaced: no successor, a successor with only remnants or itself
        // gone, a successor that does not replace the rule, a finding still there.
        for others in [
            vec![],
            vec![ultraav(FindingState::Remnants, Status::New)],
            vec![ultraav(FindingState::Installed, Status::Remediated)],
        ] {
            let mut findings = vec![gone.clone()];
            findings.extend(others.clone());
            mark_replaced(&mut findings, ultraav_replaces);
            assert_eq!(findings[0].state, FindingState::Installed, "{others:?}");
        }
        let mut findings = vec![gone.clone(), ultraav(FindingState::Installed, Status::Open)];
        mark_replaced(&mut findings, |_, _| false);
        assert_eq!(findings[0].state, FindingState::Installed);
        let still = finding(ts(T0));
        let mut findings = vec![still, ultraav(FindingState::Installed, Status::Open)];
        mark_replaced(&mut findings, ultraav_replaces);
        assert_eq!(
            findings[0].state,
            FindingState::Installed,
            "present findings are the matcher's business"
        );
    }

    /// The same product under `policy`, swept at T0 and again at `now`.
    fn second_sweep(policy: Policy, now: &str) -> Finding {
        let mut first = finding(ts(T0));
        first.policy = policy;
        let t = derive(None, Observation::Present(&first), &cx(T0))
            .track
            .unwrap();
        let mut again = finding(ts(now));
        again.policy = policy;
        derive(Some(&t), Observation::Present(&again), &cx(now))
            .finding
            .unwrap()
    }

    #[test]
    fn a_watched_product_past_its_grace_stays_open_a_banned_one_is_overdue() {
        // Due 2026-12-01 for both; a day, and a year, past it.
        for now in ["2026-12-02T00:00:00Z", "2027-12-01T06:00:00Z"] {
            let ban = second_sweep(Policy::Ban, now);
            assert_eq!(ban.status, Status::Overdue, "ban at {now}");
            let watch = second_sweep(Policy::Watch, now);
            assert_eq!(watch.status, Status::Open, "watch at {now}");
            assert_eq!(watch.policy, Policy::Watch);
            // The due date is still reported, for the record.
            assert_eq!(watch.due, ban.due);
        }
        // Before the due date both are open.
        let now = "2026-11-15T06:00:00Z";
        assert_eq!(second_sweep(Policy::Ban, now).status, Status::Open);
        assert_eq!(second_sweep(Policy::Watch, now).status, Status::Open);
    }

    #[test]
    fn a_watched_product_with_no_grace_is_open_from_its_second_sweep() {
        let mut f = finding(ts(T0));
        f.policy = Policy::Watch;
        let c0 = Context {
            grace_days: 0,
            ..cx(T0)
        };
        let t = derive(None, Observation::Present(&f), &c0).track.unwrap();
        let c1 = Context {
            grace_days: 0,
            ..cx("2026-11-03T06:00:00Z")
        };
        let d = derive(Some(&t), Observation::Present(&f), &c1);
        assert_eq!(d.finding.unwrap().status, Status::Open);
        assert_eq!(
            d.track.unwrap().status,
            Status::Open,
            "the store keeps open"
        );
    }

    #[test]
    fn a_watched_product_keeps_every_other_status() {
        let mut f = finding(ts(T0));
        f.policy = Policy::Watch;
        let t = derive(None, Observation::Present(&f), &cx(T0))
            .track
            .unwrap();
        assert_eq!(t.status, Status::New);
        // Gone: remediated, once.
        let gone = derive(Some(&t), Observation::Absent, &cx("2027-03-01T06:00:00Z"));
        assert_eq!(gone.finding.unwrap().status, Status::Remediated);
        // Back, long past any grace: reinstalled, then open, never overdue.
        let gone = gone.track.unwrap();
        let back = derive(
            Some(&gone),
            Observation::Present(&f),
            &cx("2027-06-01T06:00:00Z"),
        );
        assert_eq!(back.finding.unwrap().status, Status::Reinstalled);
        let later = derive(
            Some(&back.track.unwrap()),
            Observation::Present(&f),
            &cx("2028-06-01T06:00:00Z"),
        );
        assert_eq!(later.finding.unwrap().status, Status::Open);
        // Not scanned: unverified; with an exception: excepted.
        let unverified = derive(
            Some(&t),
            Observation::NotScanned {
                last_verified: None,
            },
            &cx("2027-03-01T06:00:00Z"),
        );
        assert_eq!(unverified.finding.unwrap().status, Status::Unverified);
        let ex = exception();
        let c = Context {
            exception: Some(&ex),
            ..cx("2027-03-01T06:00:00Z")
        };
        let excepted = derive(Some(&t), Observation::Present(&f), &c);
        assert_eq!(excepted.finding.unwrap().status, Status::Excepted);
    }

    #[test]
    fn a_product_moved_from_watch_to_ban_gets_its_grace_from_the_ban() {
        // Watched for months, then banned by the catalog: open, due 30 days
        // after the first sweep that sees it banned, overdue after that.
        let mut f = finding(ts(T0));
        f.policy = Policy::Watch;
        let t = derive(None, Observation::Present(&f), &cx(T0))
            .track
            .unwrap();
        let now = "2027-02-01T06:00:00Z";
        let watched = derive(Some(&t), Observation::Present(&f), &cx(now));
        assert_eq!(watched.finding.unwrap().status, Status::Open);
        f.policy = Policy::Ban;
        let ban_day = "2027-02-02T06:00:00Z";
        let banned = derive(
            Some(&watched.track.unwrap()),
            Observation::Present(&f),
            &cx(ban_day),
        );
        let out = banned.finding.unwrap();
        assert_eq!(out.status, Status::Open);
        assert_eq!(out.due, Some("2027-03-04".parse().unwrap()));
        assert_eq!(out.first_seen, ts(T0), "first_seen is the first sighting");
        let t = banned.track.unwrap();
        assert_eq!(t.since, ts(ban_day));
        let late = derive(
            Some(&t),
            Observation::Present(&f),
            &cx("2027-03-05T06:00:00Z"),
        );
        assert_eq!(late.finding.unwrap().status, Status::Overdue);
        // Banned to watched: open at once, whatever the due date said.
        let mut w = f.clone();
        w.policy = Policy::Watch;
        let relaxed = derive(
            Some(&late.track.unwrap()),
            Observation::Present(&w),
            &cx("2027-03-06T06:00:00Z"),
        );
        assert_eq!(relaxed.finding.unwrap().status, Status::Open);
    }

    #[test]
    fn due_date_saturates() {
        assert_eq!(due_date(Timestamp::MAX, u32::MAX), Date::MAX);
    }
}
