//! Logging that compiles away when the `log` feature is off.
//!
//! The loop logs through these macros instead of calling `log` directly so that
//! an embedder who turns the feature off pays nothing: the arguments are still
//! type-checked (so a typo cannot hide behind a feature flag) but never evaluated.

#[cfg(feature = "log")]
macro_rules! log_at {
    ($level:ident, $($arg:tt)+) => { ::log::$level!(target: "selectloop", $($arg)+) };
}

#[cfg(not(feature = "log"))]
macro_rules! log_at {
    ($level:ident, $($arg:tt)+) => {
        if false {
            let _ = ::std::format_args!($($arg)+);
        }
    };
}

#[allow(unused_macros)]
macro_rules! trace { ($($arg:tt)+) => { log_at!(trace, $($arg)+) }; }
#[allow(unused_macros)]
macro_rules! debug { ($($arg:tt)+) => { log_at!(debug, $($arg)+) }; }
#[allow(unused_macros)]
macro_rules! info { ($($arg:tt)+) => { log_at!(info, $($arg)+) }; }
#[allow(unused_macros)]
macro_rules! warn { ($($arg:tt)+) => { log_at!(warn, $($arg)+) }; }
