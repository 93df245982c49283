//! The helper's seccomp filter: once the CA files are read and the connection is set up,
//! the helper needs only to move bytes between its two sockets, allocate, and get random
//! bytes for the handshake. Every other system call (open, execve, socket, connect,
//! ptrace...) fails with `EPERM`, so a flaw in the TLS code that a server exploits finds no
//! file, no new socket and no program to run. The filter also sets `no_new_privs`.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// What the relay loop, the allocator and the exit path call (musl and glibc, x86_64 and
/// aarch64 names; 64-bit targets only, as seccompiler).
fn allowed() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_recvfrom,
        libc::SYS_sendto,
        libc::SYS_recvmsg,
        libc::SYS_sendmsg,
        libc::SYS_ppoll,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_mprotect,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_close,
        libc::SYS_fcntl,
        libc::SYS_sched_yield,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(libc::SYS_poll);
    v
}

/// The filter for this architecture.
pub fn filter() -> Result<BpfProgram, String> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        allowed().into_iter().map(|nr| (nr, Vec::new())).collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp: {e}"))?;
    SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|e| format!("seccomp: {e}"))
}

/// Installs [`filter`] on the calling thread (the helper has no other).
pub fn enter() -> Result<(), String> {
    seccompiler::apply_filter(&filter()?).map_err(|e| format!("seccomp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_the_sandbox_files_cannot_be_opened_but_sockets_still_carry_bytes() {
        // A thread of its own: the filter stays with it.
        std::thread::spawn(|| {
            enter().unwrap();
            let e = std::fs::File::open("/etc/hostname").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            assert!(std::net::TcpStream::connect("127.0.0.1:1").is_err());
            let mut fds = [0; 2];
            // socketpair is not allowed either: no new sockets.
            // SAFETY: socketpair writes into `fds` only.
            let r =
                unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
            assert_eq!(r, -1);
            let mut buf = vec![0u8; 1 << 20]; // the allocator still works
            buf[12345] = 1;
            let mut r = [0u8; 16];
            // SAFETY: getrandom writes at most 16 bytes into `r`.
            assert_eq!(unsafe { libc::getrandom(r.as_mut_ptr().cast(), 16, 0) }, 16);
        })
        .join()
        .unwrap();
    }
}
