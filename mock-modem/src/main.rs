//! `quectel-mock` binary: serve the behavioural simulator on TCP or a PTY.
//!
//! ```text
//! quectel-mock [--model bg96] [--pin 1234] [--chunk N] [--no-echo] [--baud 115200] (--tcp 127.0.0.1:5555 | --unix PATH | --pty)
//! ```
//!
//! `--unix PATH` listens on a Unix socket (e.g. for `qemu-system-arm -serial unix:PATH`); a
//! stale socket file at `PATH` is replaced. TCP connections get `TCP_NODELAY`.
//!
//! Sockets opened with `AT+QIOPEN`/`AT+QSSLOPEN` connect to loopback only.

use std::time::Duration;

use quectel_mock::{MockModem, Model, StreamLink};

fn usage() -> ! {
    eprintln!(
        "usage: quectel-mock [--model bg96|bg95|bg77|ec21|ec25|eg91|ec600n] [--pin PIN] \
         [--chunk N] [--no-echo] [--search-ms MS] [--baud RATE] (--tcp ADDR | --unix PATH | --pty)"
    );
    std::process::exit(2)
}

fn main() {
    let mut model = Model::Bg96;
    let mut pin: Option<String> = None;
    let mut chunk = 0usize;
    let mut echo = true;
    let mut search = Duration::from_millis(100);
    let mut tcp: Option<String> = None;
    let mut pty = false;
    let mut unix: Option<String> = None;
    let mut baud: Option<u32> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--model" => {
                model = val().parse().unwrap_or_else(|e| {
                    eprintln!("{e}");
                    usage()
                })
            }
            "--pin" => pin = Some(val()),
            "--chunk" => chunk = val().parse().unwrap_or_else(|_| usage()),
            "--search-ms" => {
                search = Duration::from_millis(val().parse().unwrap_or_else(|_| usage()))
            }
            "--no-echo" => echo = false,
            "--baud" => baud = Some(val().parse().unwrap_or_else(|_| usage())),
            "--tcp" => tcp = Some(val()),
            "--pty" => pty = true,
            "--unix" => unix = Some(val()),
            _ => usage(),
        }
    }
    let build = || {
        MockModem::new(model)
            .pin(pin.as_deref())
            .chunk(chunk, Duration::ZERO)
            .echo(echo)
            .search_time(search)
            .baud(baud)
    };
    if let Some(addr) = tcp {
        let listener = std::net::TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("bind {addr}: {e}");
            std::process::exit(1)
        });
        // Print the bound address (with `:0` the system picks the port).
        let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
        eprintln!("quectel-mock ({model}) listening on {bound}");
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // Command/response traffic: no Nagle delay on the modem's answers.
            let _ = stream.set_nodelay(true);
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            eprintln!("client connected");
            // One fresh modem (booting) per connection.
            build().serve(StreamLink::new(reader, stream));
            eprintln!("client disconnected");
        }
    } else if let Some(path) = unix {
        serve_unix(&path, build);
    } else if pty {
        serve_pty(build());
    } else {
        usage();
    }
}

#[cfg(unix)]
fn serve_unix(path: &str, build: impl Fn() -> MockModem) {
    use std::os::unix::net::UnixListener;

    // A socket file left over by an earlier run would make `bind` fail.
    if std::fs::symlink_metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).unwrap_or_else(|e| {
        eprintln!("bind {path}: {e}");
        std::process::exit(1)
    });
    eprintln!("quectel-mock listening on unix:{path}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Ok(reader) = stream.try_clone() else {
            continue;
        };
        eprintln!("client connected");
        // One fresh modem (booting) per connection.
        build().serve(StreamLink::new(reader, stream));
        eprintln!("client disconnected");
    }
}

#[cfg(not(unix))]
fn serve_unix(_path: &str, _build: impl Fn() -> MockModem) {
    eprintln!("--unix is only supported on unix");
    std::process::exit(1);
}

#[cfg(unix)]
fn serve_pty(modem: MockModem) {
    use std::fs::File;
    use std::os::fd::FromRawFd;

    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let mut name = [0 as libc::c_char; 256];
    // SAFETY: openpty writes into the provided out-pointers; the name buffer is large enough.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            name.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        eprintln!("openpty failed: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // Raw mode on the slave so the line discipline does not echo or translate bytes.
    // SAFETY: `slave` is a valid open terminal fd; termios is plain data.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(slave, &mut t) == 0 {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave, libc::TCSANOW, &t);
        }
    }
    // SAFETY: name was NUL-terminated by openpty.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    println!("{}", path.to_string_lossy());
    eprintln!("quectel-mock serving on PTY {}", path.to_string_lossy());
    // Keep the slave fd open (never closed) so the master does not see EIO when
    // a client closes its end.
    // SAFETY: dup returns a new fd owned by the File.
    let reader = unsafe { File::from_raw_fd(libc::dup(master)) };
    // SAFETY: `master` is an open fd now owned by this File.
    let writer = unsafe { File::from_raw_fd(master) };
    modem.serve(StreamLink::new(reader, writer));
    let _ = slave;
}

#[cfg(not(unix))]
fn serve_pty(_modem: MockModem) {
    eprintln!("--pty is only supported on unix");
    std::process::exit(1);
}
