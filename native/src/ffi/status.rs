//! Status codes, the panic boundary and the per-thread last error message.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every fallible call. 0 is success; every other value comes with a message from
/// `hg_last_error_message`. Values are stable and never reused.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HgStatus {
    HgOk = 0,
    /// A required pointer argument was NULL.
    HgNullPointer = 1,
    /// An argument is out of range (unknown layout, stride smaller than a row, ...).
    HgInvalidArgument = 2,
    /// An input buffer is smaller than its description requires.
    HgBufferTooSmall = 3,
    /// Text could not be parsed (for example a PDQ hash that is not 64 hex digits).
    HgParseError = 4,
    /// A caller-owned output buffer is too small; the size needed was written to the call's
    /// count output, and the call can be repeated with a larger buffer.
    HgOutputTooSmall = 5,
    /// A file could not be read; the message says which and why.
    HgIoError = 6,
    /// A list bundle is truncated, not a bundle, of an unknown format version, or malformed.
    HgListMalformed = 10,
    /// A list bundle (or a count in it) is over the configured size caps.
    HgListTooLarge = 11,
    /// The bundle's signing key is not certified by a trusted root key, or its certificate is
    /// invalid or outside its validity window.
    HgListUntrustedKey = 12,
    /// The bundle's signature does not verify: it was altered.
    HgListBadSignature = 13,
    /// The bundle is for another list.
    HgListWrongList = 14,
    /// The bundle is not newer than the installed version.
    HgListRollback = 15,
    /// The list has expired and the policy refuses stale lists.
    HgListExpired = 16,
    /// No configured content key opens the bundle.
    HgListNoKey = 17,
    /// A delta for a different base version than the installed list.
    HgListWrongBase = 18,
    /// A bug inside hashguard was caught at the boundary; the call had no effect on outputs
    /// that can be relied on. Please report it with the message.
    HgInternalError = 255,
}

/// An error on its way to the boundary: the status and the message for this thread.
pub struct Failure {
    status: HgStatus,
    message: String,
}

pub fn fail(status: HgStatus, message: String) -> Failure {
    Failure { status, message }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|m| *m.borrow_mut() = message);
}

/// Runs `f` inside the panic boundary and turns its outcome into a status.
pub fn guard(f: impl FnOnce() -> Result<(), Failure>) -> HgStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => HgStatus::HgOk,
        Ok(Err(failure)) => {
            set_last_error(failure.message);
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!("internal error: {what}"));
            HgStatus::HgInternalError
        }
    }
}

/// # Safety
/// `buf` must be valid for `buf_len` bytes (or `buf_len` is 0).
pub unsafe fn copy_last_error(buf: *mut u8, buf_len: usize) -> usize {
    LAST_ERROR.with(|m| {
        let m = m.borrow();
        if !buf.is_null() && buf_len > 0 {
            let n = m.len().min(buf_len - 1);
            std::ptr::copy_nonoverlapping(m.as_ptr(), buf, n);
            *buf.add(n) = 0;
        }
        m.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> String {
        let mut buf = [0u8; 256];
        let n = unsafe { copy_last_error(buf.as_mut_ptr(), buf.len()) };
        String::from_utf8(buf[..n.min(255)].to_vec()).unwrap()
    }

    #[test]
    fn panics_become_internal_errors() {
        let status = guard(|| panic!("boom {}", 7));
        assert_eq!(status, HgStatus::HgInternalError);
        assert_eq!(message(), "internal error: boom 7");
    }

    #[test]
    fn failures_keep_status_and_message_and_success_leaves_it() {
        let status = guard(|| Err(fail(HgStatus::HgParseError, "bad hex".into())));
        assert_eq!(status, HgStatus::HgParseError);
        assert_eq!(guard(|| Ok(())), HgStatus::HgOk);
        assert_eq!(message(), "bad hex");
    }

    #[test]
    fn truncates_to_the_buffer() {
        guard(|| Err(fail(HgStatus::HgInvalidArgument, "0123456789".into())));
        let mut buf = [0xffu8; 4];
        let n = unsafe { copy_last_error(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(n, 10);
        assert_eq!(&buf, b"012\0");
        assert_eq!(unsafe { copy_last_error(std::ptr::null_mut(), 0) }, 10);
    }
}
