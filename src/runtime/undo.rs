//! Undo that tells: the stack of inverses a multi-step runtime operation
//! (a base import, a pod's create or start) pushes as it makes each
//! effect, run newest first when a later step fails. An inverse that
//! fails is not dropped: it is logged with the failure that caused the
//! undo and named in the error returned, so an operator learns what was
//! left behind (a dataset, a cell, a row) and why.
//!
//! The stack serves every layer of the runtime: the drivers' own
//! multi-step operations (a seal, a clone, a receive, a jail's create) use
//! it with their own error types (`Unwound`), and an inverse may fail with
//! whatever error its tool gives.

use std::fmt;

use super::datasets::DatasetError;
use super::RuntimeError;

/// One inverse: what it removes or restores (`dataset pods/X`), and how;
/// its error is kept as text, which is all `LeftBehind` reports.
struct Step<'a> {
    what: String,
    undo: Box<dyn FnOnce() -> Result<(), String> + 'a>,
}

/// An error that can say what the undo after it left behind.
pub trait Unwound: fmt::Display + Sized {
    /// `cause`, and what its undo could not remove (never empty).
    fn left_behind(cause: Self, left: LeftBehind) -> Self;
}

impl Unwound for RuntimeError {
    fn left_behind(cause: Self, left: LeftBehind) -> Self {
        RuntimeError::LeftBehind {
            cause: Box::new(cause),
            left,
        }
    }
}

impl Unwound for DatasetError {
    fn left_behind(cause: Self, left: LeftBehind) -> Self {
        DatasetError::LeftBehind {
            cause: Box::new(cause),
            left,
        }
    }
}

/// For steps whose errors are text (a jail's mounts).
impl Unwound for String {
    fn left_behind(cause: Self, left: LeftBehind) -> Self {
        format!("{cause} (and left behind: {left})")
    }
}

/// What inverses could not undo, each with its own error.
#[derive(Debug, Default)]
pub struct LeftBehind(pub Vec<(String, String)>);

impl fmt::Display for LeftBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (what, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{what}: {why}")?;
        }
        Ok(())
    }
}

/// The inverses of the effects made so far. `commit` keeps the effects;
/// `unwind` undoes them. Dropped with inverses left (an early `?` that
/// skipped both), it unwinds too, so no path forgets its undo; only the
/// log can tell of that case's leftovers.
pub struct Undo<'a> {
    steps: Vec<Step<'a>>,
}

impl<'a> Undo<'a> {
    pub fn new() -> Undo<'a> {
        Undo { steps: Vec::new() }
    }

    /// Records the inverse of an effect just made; `what` names what the
    /// inverse removes or restores, for the error should it fail.
    pub fn push(
        &mut self,
        what: impl Into<String>,
        undo: impl FnOnce() -> Result<(), RuntimeError> + 'a,
    ) {
        self.push_with(what, undo);
    }

    /// `push` for an inverse that fails with another error than the
    /// runtime's: a driver's, or a host tool's.
    pub fn push_with<E: fmt::Display>(
        &mut self,
        what: impl Into<String>,
        undo: impl FnOnce() -> Result<(), E> + 'a,
    ) {
        self.steps.push(Step {
            what: what.into(),
            undo: Box::new(move || undo().map_err(|e| e.to_string())),
        });
    }

    /// Every step succeeded: the effects stay.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// A step failed with `cause`: runs the inverses newest first and
    /// returns the error to report, `cause` itself when all of them
    /// succeeded, else `cause` with what was left behind.
    pub fn unwind<E: Unwound>(mut self, cause: E) -> E {
        self.fail(cause)
    }

    /// Runs the inverses newest first after `cause`, and returns what they
    /// left behind (empty when all succeeded), for an error type that has
    /// no room for it (`Unwound`) and says it its own way.
    // Only the FreeBSD jail driver has such an error type today.
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    pub fn unwind_left(mut self, cause: &dyn fmt::Display) -> LeftBehind {
        self.run(&cause.to_string())
    }

    /// Passes a step's value on; its error unwinds the stack (as `unwind`).
    pub fn check<T, E: Unwound>(&mut self, result: Result<T, E>) -> Result<T, E> {
        result.map_err(|cause| self.fail(cause))
    }

    fn fail<E: Unwound>(&mut self, cause: E) -> E {
        let left = self.run(&cause.to_string());
        if left.0.is_empty() {
            cause
        } else {
            E::left_behind(cause, left)
        }
    }

    fn run(&mut self, cause: &str) -> LeftBehind {
        let mut left = LeftBehind::default();
        while let Some(step) = self.steps.pop() {
            if let Err(e) = (step.undo)() {
                tracing::error!("undoing after \"{cause}\": {} left behind: {e}", step.what);
                left.0.push((step.what, e));
            }
        }
        left
    }
}

impl Default for Undo<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.steps.is_empty() {
            self.run("an early return");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn failing(what: &str) -> RuntimeError {
        RuntimeError::Io {
            what: what.into(),
            source: std::io::Error::other("busy"),
        }
    }

    #[test]
    fn inverses_run_newest_first_and_a_clean_unwind_returns_the_cause() {
        let ran = RefCell::new(Vec::new());
        let mut undo = Undo::new();
        undo.push("row", || {
            ran.borrow_mut().push("row");
            Ok(())
        });
        undo.push("dataset", || {
            ran.borrow_mut().push("dataset");
            Ok(())
        });
        let e = undo.unwind(RuntimeError::NoSuchBase("b".into()));
        assert_eq!(*ran.borrow(), ["dataset", "row"]);
        assert!(matches!(e, RuntimeError::NoSuchBase(_)), "{e:?}");
    }

    #[test]
    fn a_failed_inverse_is_named_in_the_error_and_the_rest_still_run() {
        let ran = RefCell::new(Vec::new());
        let mut undo = Undo::new();
        undo.push("row of pod X", || {
            ran.borrow_mut().push("row");
            Ok(())
        });
        undo.push("dataset pods/X", || Err(failing("destroying pods/X")));
        undo.push("cell X", || Err(failing("ending cell X")));
        let e = undo.unwind(RuntimeError::NoSuchPod("p".into()));
        assert_eq!(
            *ran.borrow(),
            ["row"],
            "the inverses below a failed one run"
        );
        assert_eq!(
            e.to_string(),
            "no pod \"p\" (and left behind: cell X: ending cell X: busy; \
             dataset pods/X: destroying pods/X: busy)"
        );
        let RuntimeError::LeftBehind { cause, left } = e else {
            panic!("not LeftBehind")
        };
        assert!(matches!(*cause, RuntimeError::NoSuchPod(_)));
        assert_eq!(left.0.len(), 2);
    }

    #[test]
    fn driver_errors_carry_what_their_undo_left_behind() {
        let mut undo = Undo::new();
        undo.push_with("snapshot d@sealed", || {
            Err::<(), _>(std::io::Error::other("busy"))
        });
        let e = undo
            .check(Err::<(), _>(DatasetError::NotFound("d".into())))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset d does not exist (and left behind: snapshot d@sealed: busy)"
        );
        assert!(matches!(e, DatasetError::LeftBehind { .. }));

        let mut undo = Undo::new();
        undo.push_with("mounts under /p", || Err::<(), _>("EBUSY"));
        assert_eq!(
            undo.unwind("mount failed".to_string()),
            "mount failed (and left behind: mounts under /p: EBUSY)"
        );

        let mut undo = Undo::new();
        undo.push_with("alias", || Ok::<(), String>(()));
        assert!(undo.unwind_left(&"cause").0.is_empty());
    }

    #[test]
    fn committed_effects_stay_and_dropped_ones_are_undone() {
        let ran = RefCell::new(0);
        let mut undo = Undo::new();
        undo.push("a", || {
            *ran.borrow_mut() += 1;
            Ok(())
        });
        undo.commit();
        assert_eq!(*ran.borrow(), 0);

        let mut undo = Undo::new();
        undo.push("a", || {
            *ran.borrow_mut() += 1;
            Ok(())
        });
        drop(undo);
        assert_eq!(*ran.borrow(), 1, "an early return still undoes");
    }

    #[test]
    fn check_passes_values_and_unwinds_on_errors() {
        let ran = RefCell::new(0);
        let mut undo = Undo::new();
        undo.push("a", || {
            *ran.borrow_mut() += 1;
            Ok(())
        });
        assert_eq!(undo.check(Ok::<_, RuntimeError>(7)).unwrap(), 7);
        assert_eq!(*ran.borrow(), 0);
        let e = undo
            .check(Err::<(), _>(RuntimeError::NoSuchBase("b".into())))
            .unwrap_err();
        assert!(matches!(e, RuntimeError::NoSuchBase(_)));
        assert_eq!(*ran.borrow(), 1);
        undo.commit();
        assert_eq!(*ran.borrow(), 1, "nothing runs twice");
    }
}
