//! One line for an error and every cause under it (what anyhow's `{:#}` prints), for logs,
//! start-up failures and the FailureDescription of a stream: library errors keep their causes
//! as `source()` instead of pasting them into their own message.

use std::fmt;

/// Displays `error: cause: cause ...`.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("delivery stream {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn every_cause_once_in_order() {
        let e = Outer("ks", std::io::Error::other("disk on fire"));
        assert_eq!(Chain(&e).to_string(), "delivery stream ks: disk on fire");
    }
}
