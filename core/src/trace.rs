//! One logging shim for the `log` and `defmt` features.
//!
//! Core logs every lifecycle step at debug level so that the seed's call trace
//! appears with no user code. With neither feature the macros expand to code
//! that still "uses" their arguments, so no unused-variable warnings appear and
//! nothing is formatted: tracing costs nothing when it is off.

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!(
    "the `log` and `defmt` features of socketserver-core are mutually exclusive: enable one"
);

/// Logs a lifecycle step: `step(arg)` at debug level.
macro_rules! step {
    ($target:literal, $step:literal) => {{
        #[cfg(feature = "log")]
        ::log::debug!(target: $target, $step);
        #[cfg(feature = "defmt")]
        ::defmt::debug!($step);
    }};
    ($target:literal, $step:literal, $($arg:expr),+) => {{
        #[cfg(feature = "log")]
        ::log::debug!(target: $target, "{}({})", $step, $crate::trace::Args(&[$(&$arg as &dyn ::core::fmt::Debug),+]));
        #[cfg(feature = "defmt")]
        ::defmt::debug!("{=str}({})", $step, ::defmt::Debug2Format(&$crate::trace::Args(&[$(&$arg as &dyn ::core::fmt::Debug),+])));
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { $( let _ = &$arg; )+ }
    }};
}

/// Logs a failure at warn level (accept errors, failed replies).
macro_rules! trace_warn {
    ($target:literal, $msg:literal, $arg:expr) => {{
        #[cfg(feature = "log")]
        ::log::warn!(target: $target, "{}: {}", $msg, $arg);
        #[cfg(feature = "defmt")]
        ::defmt::warn!("{=str}: {}", $msg, ::defmt::Display2Format(&$arg));
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = &$arg; }
    }};
}

pub(crate) use step;
pub(crate) use trace_warn;

/// Arguments printed the way Python prints a call: `a, b`.
#[cfg(any(feature = "log", feature = "defmt"))]
pub(crate) struct Args<'a>(pub(crate) &'a [&'a dyn core::fmt::Debug]);

#[cfg(any(feature = "log", feature = "defmt"))]
impl core::fmt::Display for Args<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, arg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{arg:?}")?;
        }
        Ok(())
    }
}

#[cfg(any(feature = "log", feature = "defmt"))]
impl core::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}
