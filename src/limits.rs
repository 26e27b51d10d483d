//! The limits of [`Config`](crate::Config) as the loop applies them: the
//! descriptor budget, and a log that names each limit when it is hit without
//! flooding the log when it is hit ten thousand times a second.

use std::time::{Duration, Instant};

/// A limit that can be hit at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    MaxConnections,
    AcceptBackoff,
    InboundQueue,
    MaxOutput,
    IdleTimeout,
    MessageDeadline,
    FrameTooLong,
    EmfileShed,
}

impl Limit {
    const ALL: usize = 8;

    /// The setting that governs it, as a user would look it up.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Limit::MaxConnections => "Config::max_connections",
            Limit::AcceptBackoff => "Config::accept_backoff (out of descriptors)",
            Limit::InboundQueue => "Config::inbound_limits",
            Limit::MaxOutput => "Config::max_output",
            Limit::IdleTimeout => "Config::idle_timeout",
            Limit::MessageDeadline => "Config::message_deadline",
            Limit::FrameTooLong => "Config::codec maximum message length",
            Limit::EmfileShed => "Config::emfile_policy (out of descriptors, shedding)",
        }
    }
}

/// Rate-limits log lines: at most one per limit per second, with the number
/// of hits that were not logged since the last line.
#[derive(Debug, Default)]
pub(crate) struct LimitLog {
    last: [Option<Instant>; Limit::ALL],
    unlogged: [u64; Limit::ALL],
}

impl LimitLog {
    /// Records a hit; returns `Some(hits not logged before this one)` when a
    /// line should be written now.
    pub(crate) fn hit(&mut self, limit: Limit, now: Instant) -> Option<u64> {
        let i = limit as usize;
        match self.last[i] {
            Some(last) if now.saturating_duration_since(last) < Duration::from_secs(1) => {
                self.unlogged[i] += 1;
                None
            }
            _ => {
                self.last[i] = Some(now);
                Some(std::mem::take(&mut self.unlogged[i]))
            }
        }
    }
}

/// The process's soft limit on open descriptors, if it has one (Windows
/// has none for sockets).
#[cfg(windows)]
pub(crate) fn open_file_limit() -> Option<u64> {
    None
}

/// The process's soft limit on open descriptors, if it has one.
#[cfg(unix)]
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let current = limit.rlim_cur as u64;
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

/// The connection cap actually applied: the configured one, lowered to fit
/// under the descriptor limit with `reserve` descriptors to spare.
pub(crate) fn effective_max_connections(configured: usize, reserve: usize) -> usize {
    match open_file_limit() {
        Some(limit) => {
            let fit = usize::try_from(limit).unwrap_or(usize::MAX);
            configured.min(fit.saturating_sub(reserve)).max(1)
        }
        None => configured.max(1),
    }
}

/// Whether an `accept` error means the process or system ran out of
/// something a retry cannot conjure: then accepting must pause.
#[cfg(unix)]
pub(crate) fn is_resource_exhaustion(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an `accept` error means Winsock ran out of sockets or buffers.
#[cfg(windows)]
pub(crate) fn is_resource_exhaustion(error: &std::io::Error) -> bool {
    use windows_sys::Win32::Networking::WinSock::{WSAEMFILE, WSAENOBUFS};
    matches!(error.raw_os_error(), Some(WSAEMFILE | WSAENOBUFS))
        || error.kind() == std::io::ErrorKind::OutOfMemory
}

/// Whether an `accept` error concerns only the connection being accepted
/// (it died in the backlog, or the network under it did): skip it and go on,
/// as accept(2) advises.
pub(crate) fn is_transient_accept_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::Interrupted | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) || is_network_accept_error(error)
}

/// Winsock's: the network under the connection failed, or (WSAENOTCONN,
/// as Wine reports it) the connection was reset while it waited to be
/// accepted.
#[cfg(windows)]
fn is_network_accept_error(error: &std::io::Error) -> bool {
    use windows_sys::Win32::Networking::WinSock::{
        WSAEHOSTDOWN, WSAEHOSTUNREACH, WSAENETDOWN, WSAENETUNREACH, WSAENOTCONN,
    };
    matches!(
        error.raw_os_error(),
        Some(WSAENETDOWN | WSAENETUNREACH | WSAEHOSTDOWN | WSAEHOSTUNREACH | WSAENOTCONN)
    )
}

#[cfg(unix)]
fn is_network_accept_error(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::EPERM
        )
    )
}

/// One connection's timeouts (see [`Config::idle_timeout`] and
/// [`Config::message_deadline`]), in milliseconds, 0 for none: eight bytes
/// where two `Option<Duration>` would take 32, in a struct every idle
/// connection holds. A timeout longer than `u32::MAX` ms (49 days) counts
/// as that long.
///
/// [`Config::idle_timeout`]: crate::Config::idle_timeout
/// [`Config::message_deadline`]: crate::Config::message_deadline
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeouts {
    pub(crate) idle_ms: u32,
    pub(crate) message_ms: u32,
}

impl Timeouts {
    pub(crate) fn new(idle: Option<Duration>, message: Option<Duration>) -> Timeouts {
        Timeouts {
            idle_ms: Timeouts::ms(idle),
            message_ms: Timeouts::ms(message),
        }
    }

    /// `timeout` in whole milliseconds, at least 1, at most `u32::MAX`.
    pub(crate) fn ms(timeout: Option<Duration>) -> u32 {
        timeout.map_or(0, |t| {
            u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1)
        })
    }
}

/// How often connections are checked against the idle timeout and message
/// deadline: a tenth of the shorter one, between 10 ms and 1 s.
pub(crate) fn sweep_interval(
    idle: Option<Duration>,
    deadline: Option<Duration>,
) -> Option<Duration> {
    let shortest = match (idle, deadline) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some((shortest / 10).clamp(Duration::from_millis(10), Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_log_writes_one_line_per_second_and_counts_the_rest() {
        let mut log = LimitLog::default();
        let t0 = Instant::now();
        assert_eq!(log.hit(Limit::MaxConnections, t0), Some(0));
        assert_eq!(log.hit(Limit::MaxConnections, t0), None);
        assert_eq!(log.hit(Limit::MaxConnections, t0), None);
        assert_eq!(
            log.hit(Limit::IdleTimeout, t0),
            Some(0),
            "limits are separate"
        );
        let later = t0 + Duration::from_secs(1);
        assert_eq!(log.hit(Limit::MaxConnections, later), Some(2));
    }

    #[test]
    fn connection_cap_fits_under_the_descriptor_limit() {
        let cap = effective_max_connections(usize::MAX, 32);
        match open_file_limit() {
            Some(limit) => assert!(cap as u64 <= limit.saturating_sub(32).max(1)),
            // Windows: no limit to fit under.
            None => assert_eq!(cap, usize::MAX),
        }
        assert_eq!(effective_max_connections(5, 32), 5.min(cap));
    }

    #[test]
    fn sweep_interval_is_a_tenth_of_the_shortest_timeout_within_bounds() {
        assert_eq!(sweep_interval(None, None), None);
        let s = Duration::from_secs;
        assert_eq!(
            sweep_interval(Some(s(5)), None),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            sweep_interval(Some(s(60)), Some(s(2))),
            Some(Duration::from_millis(200))
        );
        assert_eq!(sweep_interval(Some(s(3600)), None), Some(s(1)));
        assert_eq!(
            sweep_interval(None, Some(Duration::from_millis(20))),
            Some(Duration::from_millis(10))
        );
    }
}
