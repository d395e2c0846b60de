//! System-user authentication through PAM, with libpam loaded at run time.
//!
//! Checking a Linux account's password (`pam_unix` and whatever else the
//! administrator stacks in `/etc/pam.d/SERVICE`) needs libpam, but linking
//! it at build time would require PAM headers (and bindgen/libclang) on
//! every build machine. Instead `libpam.so.0` is opened with `libloading`
//! the first time it is needed, and the few functions used are declared
//! here by hand from Linux-PAM's `<security/_pam_types.h>`/`pam_appl.h`.
//! This is the only module of the server with `unsafe` code.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

use libloading::Library;

/// Shared object name of Linux-PAM's application library.
const LIBPAM: &str = "libpam.so.0";

// Return codes (Linux-PAM `_pam_types.h`).
const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_PERM_DENIED: c_int = 6;
const PAM_AUTH_ERR: c_int = 7;
const PAM_CRED_INSUFFICIENT: c_int = 8;
const PAM_AUTHINFO_UNAVAIL: c_int = 9;
const PAM_USER_UNKNOWN: c_int = 10;
const PAM_MAXTRIES: c_int = 11;
const PAM_NEW_AUTHTOK_REQD: c_int = 12;
const PAM_ACCT_EXPIRED: c_int = 13;
const PAM_CONV_ERR: c_int = 19;

// Message styles.
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

// Item types.
const PAM_RHOST: c_int = 4;

// Flags: no messages to the (non-existent) terminal, and never accept an
// empty password even if the stack says `nullok`.
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
const AUTH_FLAGS: c_int = PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK;

/// Linux-PAM's `PAM_MAX_NUM_MSG`: more messages in one call is bogus.
const PAM_MAX_NUM_MSG: c_int = 32;

/// `struct pam_message`.
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`; PAM frees `resp` and the array with `free(3)`.
#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

/// The conversation callback's C signature (Linux-PAM argument layout).
type ConvFn = extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

/// Opaque `pam_handle_t`.
#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

type PamStartFn = unsafe extern "C" fn(
    service: *const c_char,
    user: *const c_char,
    conv: *const PamConv,
    handle: *mut *mut PamHandle,
) -> c_int;
type PamSetItemFn =
    unsafe extern "C" fn(handle: *mut PamHandle, item: c_int, value: *const c_void) -> c_int;
/// `pam_authenticate`, `pam_acct_mgmt` and `pam_end` share this shape.
type PamHandleIntFn = unsafe extern "C" fn(handle: *mut PamHandle, value: c_int) -> c_int;

/// The loaded library and the entry points we use.
struct PamLib {
    /// Kept alive (never unloaded) so the function pointers stay valid.
    _lib: Library,
    start: PamStartFn,
    set_item: PamSetItemFn,
    authenticate: PamHandleIntFn,
    acct_mgmt: PamHandleIntFn,
    end: PamHandleIntFn,
}

/// libpam, loaded on first use; a load failure is remembered, not retried.
static LIBRARY: OnceLock<Result<PamLib, String>> = OnceLock::new();

/// Why PAM could not give a yes/no answer.
#[derive(Debug, thiserror::Error)]
pub enum PamError {
    /// `libpam.so.0` (or one of its functions) could not be loaded.
    #[error("cannot load {LIBPAM}: {0}")]
    Load(String),
    /// A PAM call failed with a code that is not a plain "denied".
    #[error("{function} failed: {} ({code})", code_name(*code))]
    Call {
        /// The libpam function that failed.
        function: &'static str,
        /// Its PAM return code.
        code: i32,
    },
    /// The user name, password, service or remote host contains a NUL byte.
    #[error("PAM input contains a NUL byte")]
    InvalidInput,
}

/// A PAM service (`/etc/pam.d/<service>`) used to check system passwords.
#[derive(Debug, Clone)]
pub struct Pam {
    service: String,
}

impl Pam {
    /// Uses the PAM configuration `/etc/pam.d/<service>` (Linux-PAM falls
    /// back to `/etc/pam.d/other` if it does not exist).
    pub fn new(service: impl Into<String>) -> Self {
        Pam {
            service: service.into(),
        }
    }

    /// The PAM service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Blocking: runs the PAM auth + account stack. `Ok(true)` means the
    /// password is right and the account is usable; `Ok(false)` means wrong
    /// password, unknown user, or an expired/locked/denied account. Call it
    /// from a blocking thread: `pam_unix` sleeps ~2 s after a failure.
    pub fn authenticate(
        &self,
        user: &str,
        password: &str,
        remote_host: Option<&str>,
    ) -> Result<bool, PamError> {
        let service = CString::new(self.service()).map_err(|_| PamError::InvalidInput)?;
        let data = ConvData {
            user: CString::new(user).map_err(|_| PamError::InvalidInput)?,
            password: CString::new(password).map_err(|_| PamError::InvalidInput)?,
        };
        let rhost = remote_host
            .map(CString::new)
            .transpose()
            .map_err(|_| PamError::InvalidInput)?;
        if user.is_empty() {
            return Ok(false);
        }
        let lib = library()?;
        let mut session = Session::start(lib, &service, &data)?;
        if let Some(rhost) = &rhost {
            session.set_item(PAM_RHOST, rhost)?;
        }
        let authenticated =
            session.run("pam_authenticate", lib.authenticate, user, self.service())?;
        Ok(authenticated && session.run("pam_acct_mgmt", lib.acct_mgmt, user, self.service())?)
    }
}

/// What the conversation callback answers with.
struct ConvData {
    user: CString,
    password: CString,
}

/// An open PAM transaction; `pam_end` is called on drop.
struct Session<'a> {
    lib: &'static PamLib,
    handle: *mut PamHandle,
    last_status: c_int,
    /// The conversation data must outlive the handle.
    _data: &'a ConvData,
}

impl<'a> Session<'a> {
    /// Calls `pam_start` with a conversation that answers from `data`.
    fn start(lib: &'static PamLib, service: &CStr, data: &'a ConvData) -> Result<Self, PamError> {
        let conv = PamConv {
            conv: converse,
            appdata_ptr: ptr::from_ref(data).cast_mut().cast(),
        };
        let mut handle: *mut PamHandle = ptr::null_mut();
        // SAFETY: all strings are NUL-terminated and outlive the call;
        // pam_start copies `conv` (the struct) and keeps `appdata_ptr`, which
        // points at `data`, borrowed by the returned Session for 'a, so it
        // stays valid until pam_end runs in Drop.
        let code = unsafe {
            (lib.start)(
                service.as_ptr(),
                data.user.as_ptr(),
                ptr::from_ref(&conv),
                ptr::from_mut(&mut handle),
            )
        };
        if code != PAM_SUCCESS || handle.is_null() {
            return Err(PamError::Call {
                function: "pam_start",
                code,
            });
        }
        Ok(Session {
            lib,
            handle,
            last_status: code,
            _data: data,
        })
    }

    /// Sets a string item such as `PAM_RHOST` (libpam copies it).
    fn set_item(&mut self, item: c_int, value: &CStr) -> Result<(), PamError> {
        // SAFETY: the handle is live (pam_end not yet called) and `value` is
        // a NUL-terminated string that libpam duplicates before returning.
        let code = unsafe { (self.lib.set_item)(self.handle, item, value.as_ptr().cast()) };
        self.last_status = code;
        match code {
            PAM_SUCCESS => Ok(()),
            _ => Err(PamError::Call {
                function: "pam_set_item",
                code,
            }),
        }
    }

    /// Runs `pam_authenticate` or `pam_acct_mgmt` and classifies the result.
    fn run(
        &mut self,
        function: &'static str,
        step: PamHandleIntFn,
        user: &str,
        service: &str,
    ) -> Result<bool, PamError> {
        // SAFETY: the handle is live and `step` is one of libpam's
        // `int f(pam_handle_t *, int flags)` entry points; it may call our
        // conversation function, whose appdata (`_data`) is still borrowed.
        let code = unsafe { step(self.handle, AUTH_FLAGS) };
        self.last_status = code;
        match code {
            PAM_SUCCESS => Ok(true),
            PAM_AUTH_ERR
            | PAM_USER_UNKNOWN
            | PAM_MAXTRIES
            | PAM_ACCT_EXPIRED
            | PAM_PERM_DENIED
            | PAM_NEW_AUTHTOK_REQD
            | PAM_CRED_INSUFFICIENT
            | PAM_AUTHINFO_UNAVAIL => {
                tracing::debug!(
                    user,
                    service,
                    function,
                    code = code_name(code),
                    "PAM denied"
                );
                Ok(false)
            }
            _ => Err(PamError::Call { function, code }),
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful pam_start and is ended
        // exactly once, here; it is not used afterwards.
        let code = unsafe { (self.lib.end)(self.handle, self.last_status) };
        if code != PAM_SUCCESS {
            tracing::warn!(code = code_name(code), "pam_end failed");
        }
    }
}

/// Returns libpam, loading it on first use.
fn library() -> Result<&'static PamLib, PamError> {
    LIBRARY
        .get_or_init(load_library)
        .as_ref()
        .map_err(|reason| PamError::Load(reason.clone()))
}

/// Opens libpam.so.0 and resolves the functions we call.
fn load_library() -> Result<PamLib, String> {
    // SAFETY: libpam is an ordinary system library whose initialisers have
    // no preconditions; it is never unloaded (it lives in a static).
    let lib = unsafe { Library::new(LIBPAM) }.map_err(|e| e.to_string())?;
    // SAFETY: each symbol is declared with the exact C prototype from
    // Linux-PAM's pam_appl.h; the copied function pointers stay valid
    // because `lib` is stored alongside them and never dropped.
    unsafe {
        let start = *lib
            .get::<PamStartFn>(b"pam_start\0")
            .map_err(|e| e.to_string())?;
        let set_item = *lib
            .get::<PamSetItemFn>(b"pam_set_item\0")
            .map_err(|e| e.to_string())?;
        let authenticate = *lib
            .get::<PamHandleIntFn>(b"pam_authenticate\0")
            .map_err(|e| e.to_string())?;
        let acct_mgmt = *lib
            .get::<PamHandleIntFn>(b"pam_acct_mgmt\0")
            .map_err(|e| e.to_string())?;
        let end = *lib
            .get::<PamHandleIntFn>(b"pam_end\0")
            .map_err(|e| e.to_string())?;
        Ok(PamLib {
            _lib: lib,
            start,
            set_item,
            authenticate,
            acct_mgmt,
            end,
        })
    }
}

/// The conversation callback handed to libpam. Never unwinds into C.
extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    // SAFETY: libpam calls this with the contract documented on `answer`;
    // `appdata_ptr` is the `ConvData` set in Session::start.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        answer(num_msg, msg, resp, appdata_ptr)
    }))
    .unwrap_or(PAM_CONV_ERR)
}

/// Builds the response array: password for echo-off prompts, user name for
/// echo-on prompts, nothing for informational messages.
///
/// # Safety
/// `msg` must point to `num_msg` readable `pam_message` pointers, `resp` must
/// be writable, and `appdata_ptr` must point to a live [`ConvData`].
unsafe fn answer(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if !(1..=PAM_MAX_NUM_MSG).contains(&num_msg)
        || msg.is_null()
        || resp.is_null()
        || appdata_ptr.is_null()
    {
        return PAM_CONV_ERR;
    }
    let Ok(count) = usize::try_from(num_msg) else {
        return PAM_CONV_ERR;
    };
    // SAFETY: guaranteed by the caller (see the function's contract).
    let data = unsafe { &*appdata_ptr.cast::<ConvData>() };
    // SAFETY: calloc has no preconditions; the result is checked for NULL
    // and, on success, handed to libpam which releases it with free().
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for index in 0..count {
        // SAFETY: `index < count` elements are readable (caller contract),
        // and `replies` has room for `count` zeroed responses.
        let code = unsafe { answer_one(*msg.add(index), &mut *replies.add(index), data) };
        if code != PAM_SUCCESS {
            // SAFETY: `replies` holds `count` entries, each NULL or strdup'ed.
            unsafe { free_replies(replies, count) };
            return code;
        }
    }
    // SAFETY: `resp` is writable (caller contract); ownership passes to PAM.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// Fills one response for one message.
///
/// # Safety
/// `message` must be NULL or point to a valid `pam_message` whose `msg` is
/// NULL or a NUL-terminated string.
unsafe fn answer_one(
    message: *const PamMessage,
    reply: &mut PamResponse,
    data: &ConvData,
) -> c_int {
    if message.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: non-NULL and valid per the contract.
    let message = unsafe { &*message };
    let text = if message.msg.is_null() {
        String::new()
    } else {
        // SAFETY: `msg` is a NUL-terminated string per the contract.
        unsafe { CStr::from_ptr(message.msg) }
            .to_string_lossy()
            .into_owned()
    };
    let reply_with = match message.msg_style {
        PAM_PROMPT_ECHO_OFF => &data.password,
        PAM_PROMPT_ECHO_ON => &data.user,
        PAM_ERROR_MSG | PAM_TEXT_INFO => {
            tracing::debug!(style = message.msg_style, message = %text, "PAM message");
            return PAM_SUCCESS;
        }
        other => {
            tracing::warn!(style = other, "unsupported PAM message style");
            return PAM_CONV_ERR;
        }
    };
    // SAFETY: `reply_with` is a valid C string; strdup's result is checked.
    let copy = unsafe { libc::strdup(reply_with.as_ptr()) };
    if copy.is_null() {
        return PAM_BUF_ERR;
    }
    reply.resp = copy;
    reply.resp_retcode = 0;
    PAM_SUCCESS
}

/// Wipes and frees a response array built by [`answer`] (error paths only).
///
/// # Safety
/// `replies` must come from `calloc` with `count` entries, each `resp` NULL
/// or allocated with `strdup`, and must not be used afterwards.
unsafe fn free_replies(replies: *mut PamResponse, count: usize) {
    for index in 0..count {
        // SAFETY: in bounds; `resp` is NULL or a NUL-terminated strdup copy.
        unsafe {
            let resp = (*replies.add(index)).resp;
            if !resp.is_null() {
                libc::explicit_bzero(resp.cast(), libc::strlen(resp));
                libc::free(resp.cast());
            }
        }
    }
    // SAFETY: allocated by calloc and not referenced any more.
    unsafe { libc::free(replies.cast()) };
}

/// Symbolic name of a PAM return code, for errors and logs.
fn code_name(code: c_int) -> &'static str {
    const NAMES: [&str; 32] = [
        "PAM_SUCCESS",
        "PAM_OPEN_ERR",
        "PAM_SYMBOL_ERR",
        "PAM_SERVICE_ERR",
        "PAM_SYSTEM_ERR",
        "PAM_BUF_ERR",
        "PAM_PERM_DENIED",
        "PAM_AUTH_ERR",
        "PAM_CRED_INSUFFICIENT",
        "PAM_AUTHINFO_UNAVAIL",
        "PAM_USER_UNKNOWN",
        "PAM_MAXTRIES",
        "PAM_NEW_AUTHTOK_REQD",
        "PAM_ACCT_EXPIRED",
        "PAM_SESSION_ERR",
        "PAM_CRED_UNAVAIL",
        "PAM_CRED_EXPIRED",
        "PAM_CRED_ERR",
        "PAM_NO_MODULE_DATA",
        "PAM_CONV_ERR",
        "PAM_AUTHTOK_ERR",
        "PAM_AUTHTOK_RECOVERY_ERR",
        "PAM_AUTHTOK_LOCK_BUSY",
        "PAM_AUTHTOK_DISABLE_AGING",
        "PAM_TRY_AGAIN",
        "PAM_IGNORE",
        "PAM_ABORT",
        "PAM_AUTHTOK_EXPIRED",
        "PAM_MODULE_UNKNOWN",
        "PAM_BAD_ITEM",
        "PAM_CONV_AGAIN",
        "PAM_INCOMPLETE",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or("unknown PAM code")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const SERVICE: &str = "roost-dev";
    const USER: &str = "roost-pamdev";
    const PASSWORD: &str = "S3cret-pw";

    /// Runs the conversation like libpam would and returns the answers.
    fn converse_with(styles: &[c_int]) -> (c_int, Vec<Option<String>>) {
        let data = ConvData {
            user: CString::new("alice").unwrap(),
            password: CString::new("pw").unwrap(),
        };
        let prompt = CString::new("Prompt: ").unwrap();
        let messages: Vec<PamMessage> = styles
            .iter()
            .map(|&msg_style| PamMessage {
                msg_style,
                msg: prompt.as_ptr(),
            })
            .collect();
        let mut pointers: Vec<*const PamMessage> = messages.iter().map(ptr::from_ref).collect();
        let mut replies: *mut PamResponse = ptr::null_mut();
        let appdata = ptr::from_ref(&data).cast_mut().cast();
        let count = c_int::try_from(styles.len()).unwrap();
        let code = converse(
            count,
            pointers.as_mut_ptr(),
            ptr::from_mut(&mut replies),
            appdata,
        );
        if code != PAM_SUCCESS {
            assert!(replies.is_null());
            return (code, Vec::new());
        }
        let mut answers = Vec::new();
        // SAFETY: `converse` succeeded, so `replies` holds one calloc'ed
        // entry per message, each NULL or a strdup'ed string; we free them.
        unsafe {
            for index in 0..styles.len() {
                let resp = (*replies.add(index)).resp;
                if resp.is_null() {
                    answers.push(None);
                } else {
                    answers.push(Some(CStr::from_ptr(resp).to_str().unwrap().to_owned()));
                    libc::free(resp.cast());
                }
            }
            libc::free(replies.cast());
        }
        (code, answers)
    }

    #[test]
    fn conversation_answers_prompts() {
        let (code, answers) = converse_with(&[
            PAM_TEXT_INFO,
            PAM_PROMPT_ECHO_ON,
            PAM_PROMPT_ECHO_OFF,
            PAM_ERROR_MSG,
        ]);
        assert_eq!(code, PAM_SUCCESS);
        assert_eq!(
            answers,
            [None, Some("alice".into()), Some("pw".into()), None]
        );
    }

    #[test]
    fn conversation_rejects_bad_calls() {
        assert_eq!(converse_with(&[PAM_PROMPT_ECHO_OFF, 99]).0, PAM_CONV_ERR);
        assert_eq!(converse_with(&[]).0, PAM_CONV_ERR);
        assert_eq!(converse_with(&[PAM_TEXT_INFO; 33]).0, PAM_CONV_ERR);
        let mut replies: *mut PamResponse = ptr::null_mut();
        let code = converse(
            1,
            ptr::null_mut(),
            ptr::from_mut(&mut replies),
            ptr::null_mut(),
        );
        assert_eq!(code, PAM_CONV_ERR);
    }

    #[test]
    fn nul_bytes_are_rejected_before_pam() {
        let pam = Pam::new(SERVICE);
        assert_eq!(pam.service(), SERVICE);
        for (user, password, host) in [
            ("a\0b", "pw", None),
            ("a", "p\0w", None),
            ("a", "pw", Some("h\0")),
        ] {
            assert!(matches!(
                pam.authenticate(user, password, host),
                Err(PamError::InvalidInput)
            ));
        }
        let bad_service = Pam::new("x\0y");
        assert!(matches!(
            bad_service.authenticate("a", "b", None),
            Err(PamError::InvalidInput)
        ));
        assert!(!pam.authenticate("", "pw", None).unwrap());
    }

    #[test]
    fn error_display() {
        let err = PamError::Call {
            function: "pam_authenticate",
            code: 4,
        };
        assert_eq!(
            err.to_string(),
            "pam_authenticate failed: PAM_SYSTEM_ERR (4)"
        );
        assert_eq!(code_name(-1), "unknown PAM code");
        assert_eq!(code_name(99), "unknown PAM code");
    }

    /// Whether the real-PAM test can run, or why not.
    fn real_pam_skip_reason() -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not running as root (pam_unix cannot read /etc/shadow)".into());
        }
        let name = CString::new(USER).unwrap();
        // SAFETY: `name` is a valid C string; only NULL-ness is inspected.
        if unsafe { libc::getpwnam(name.as_ptr()) }.is_null() {
            return Some(format!("system user {USER} does not exist"));
        }
        let conf = format!("/etc/pam.d/{SERVICE}");
        if !std::path::Path::new(&conf).exists() {
            return Some(format!("{conf} does not exist"));
        }
        if library().is_err() {
            return Some(format!("{LIBPAM} cannot be loaded"));
        }
        None
    }

    /// Needs root, user `roost-pamdev` with password `S3cret-pw`, and
    /// `/etc/pam.d/roost-dev` with `@include common-auth` and
    /// `@include common-account`.
    #[test]
    fn real_pam_unix() {
        if let Some(reason) = real_pam_skip_reason() {
            eprintln!("skipping real_pam_unix: {reason}");
            return;
        }
        let pam = Pam::new(SERVICE);
        let started = Instant::now();
        assert!(pam.authenticate(USER, PASSWORD, Some("192.0.2.7")).unwrap());
        eprintln!("right password: {:?}", started.elapsed());

        let started = Instant::now();
        assert!(!pam.authenticate(USER, "wrong", Some("192.0.2.7")).unwrap());
        eprintln!("wrong password: {:?}", started.elapsed());

        let started = Instant::now();
        assert!(!pam
            .authenticate("roost-no-such-user", PASSWORD, None)
            .unwrap());
        eprintln!("unknown user: {:?}", started.elapsed());

        assert!(!pam.authenticate(USER, "", None).unwrap());
        assert!(!pam.authenticate(USER, &"x".repeat(5000), None).unwrap());

        let threads: Vec<_> = (0..8)
            .map(|_| {
                let pam = pam.clone();
                std::thread::spawn(move || pam.authenticate(USER, PASSWORD, None).unwrap())
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap());
        }
    }
}
