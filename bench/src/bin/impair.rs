//! `impair`: a lossy link between two TAP devices. Every Ethernet frame the
//! kernel sends on one device is read here and written into the other,
//! except that, independently in each direction, a share of them is dropped,
//! a share sent twice and a share held back and sent after the next frame
//! (reordered). The kernel here has no `netem` qdisc, so this relay is the
//! benchmark's impairment; it is the same for every server behind it.
//!
//! ```text
//! impair --a NETNS:DEV --b NETNS:DEV [--loss 5] [--dup 5] [--reorder 10] [--seed N]
//! ```
//!
//! Each device is opened inside the named network namespace (`ip netns`),
//! so one relay joins two namespaces. It prints `relaying` once both are
//! open, runs until killed, and on SIGTERM prints what it did per direction.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use smoltcp::phy::{Device, Medium, RxToken, TunTapInterface, TxToken};
use socketserver_bench::die;

/// A frame held back for reordering leaves after the next frame of its
/// direction, or after this long if none comes (then it was only delayed).
const HOLD: Duration = Duration::from_millis(1);
/// Frames read from one side before the other side gets a turn.
const BATCH: usize = 64;

#[derive(Debug, Parser)]
#[command(about = "A lossy, duplicating, reordering link between two TAP devices")]
struct Cli {
    /// One end: NETNS:DEV (the device must exist in that namespace).
    #[arg(long, value_name = "NETNS:DEV")]
    a: String,
    /// The other end.
    #[arg(long, value_name = "NETNS:DEV")]
    b: String,
    /// Percent of frames dropped, each direction.
    #[arg(long, default_value_t = 5.0)]
    loss: f64,
    /// Percent of frames sent twice, each direction.
    #[arg(long, default_value_t = 5.0)]
    dup: f64,
    /// Percent of frames sent after the frame that follows them, each direction.
    #[arg(long, default_value_t = 10.0)]
    reorder: f64,
    /// Which directions are impaired: both, a-b or b-a (the other is perfect).
    #[arg(long, default_value = "both", value_parser = ["both", "a-b", "b-a"])]
    only: String,
    /// Seed of the pseudo-random choices (same seed, same choices for the same frames).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// xorshift64*: enough randomness for choosing frames, and reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (x as f64) < percent / 100.0 * (1u64 << 53) as f64
    }
}

/// What one direction did.
#[derive(Debug, Default)]
struct Counts {
    frames: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
}

/// One direction of the link: its choices and the frame it holds back.
struct Direction {
    name: &'static str,
    rng: Rng,
    held: Option<(Vec<u8>, Instant)>,
    counts: Counts,
}

struct Impairment {
    loss: f64,
    dup: f64,
    reorder: f64,
}

fn open(end: &str) -> TunTapInterface {
    let (ns, dev) = end
        .split_once(':')
        .unwrap_or_else(|| die("impair", format!("{end}: not NETNS:DEV")));
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| die(&format!("impair: {path}"), e));
    // A TAP descriptor belongs to the namespace it was opened in; only this
    // thread moves, and it stays there until the next `open`.
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| die(&format!("impair: setns {ns}"), e));
    // Not /sys/class/net: sysfs shows the namespace it was mounted in.
    if nix::net::if_::if_nametoindex(dev).is_err() {
        die("impair", format!("{dev}: no such device in namespace {ns}"));
    }
    TunTapInterface::new(dev, Medium::Ethernet)
        .unwrap_or_else(|e| die(&format!("impair: {end}"), e))
}

fn send(device: &mut TunTapInterface, frame: &[u8]) {
    let now = smoltcp::time::Instant::now();
    if let Some(token) = device.transmit(now) {
        token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
    }
}

/// Moves up to [`BATCH`] frames from `from` to `to` through `dir`'s impairment.
fn pump(
    from: &mut TunTapInterface,
    to: &mut TunTapInterface,
    dir: &mut Direction,
    how: &Impairment,
) -> bool {
    let mut moved = false;
    for _ in 0..BATCH {
        let now = smoltcp::time::Instant::now();
        let Some((rx, _)) = from.receive(now) else {
            break;
        };
        let frame = rx.consume(|buf| buf.to_vec());
        moved = true;
        dir.counts.frames += 1;
        if dir.rng.chance(how.loss) {
            dir.counts.dropped += 1;
            continue;
        }
        let copies = if dir.rng.chance(how.dup) {
            dir.counts.duplicated += 1;
            2
        } else {
            1
        };
        if dir.held.is_none() && dir.rng.chance(how.reorder) {
            dir.counts.reordered += 1;
            if copies == 2 {
                send(to, &frame);
            }
            dir.held = Some((frame, Instant::now() + HOLD));
            continue;
        }
        for _ in 0..copies {
            send(to, &frame);
        }
        if let Some((late, _)) = dir.held.take() {
            send(to, &late);
        }
    }
    moved
}

fn release_due(to: &mut TunTapInterface, dir: &mut Direction) {
    if dir
        .held
        .as_ref()
        .is_some_and(|(_, at)| *at <= Instant::now())
        && let Some((late, _)) = dir.held.take()
    {
        send(to, &late);
    }
}

fn readable(fd: BorrowedFd<'_>) -> PollFd<'_> {
    PollFd::new(fd, PollFlags::POLLIN)
}

fn main() {
    let cli = Cli::parse();
    for (what, p) in [
        ("--loss", cli.loss),
        ("--dup", cli.dup),
        ("--reorder", cli.reorder),
    ] {
        if !(0.0..=100.0).contains(&p) {
            die("impair", format!("{what} must be 0-100 (percent)"));
        }
    }
    let how = Impairment {
        loss: cli.loss,
        dup: cli.dup,
        reorder: cli.reorder,
    };
    let perfect = Impairment {
        loss: 0.0,
        dup: 0.0,
        reorder: 0.0,
    };
    let (how_ab, how_ba) = match cli.only.as_str() {
        "a-b" => (&how, &perfect),
        "b-a" => (&perfect, &how),
        _ => (&how, &how),
    };
    let mut a = open(&cli.a);
    let mut b = open(&cli.b);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .unwrap_or_else(|e| die("impair: signals", e));
    }
    let mut ab = Direction {
        name: "a->b",
        rng: Rng::new(cli.seed),
        held: None,
        counts: Counts::default(),
    };
    let mut ba = Direction {
        name: "b->a",
        rng: Rng::new(cli.seed ^ 0x5555_5555),
        held: None,
        counts: Counts::default(),
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "relaying")
            .and_then(|()| out.flush())
            .unwrap_or_else(|e| die("impair: stdout", e));
    }
    let (fd_a, fd_b) = (a.as_raw_fd(), b.as_raw_fd());
    while !stop.load(Ordering::Relaxed) {
        let moved = pump(&mut a, &mut b, &mut ab, how_ab) | pump(&mut b, &mut a, &mut ba, how_ba);
        release_due(&mut b, &mut ab);
        release_due(&mut a, &mut ba);
        if moved {
            continue;
        }
        let next = [&ab, &ba]
            .iter()
            .filter_map(|d| d.held.as_ref().map(|(_, at)| *at))
            .min();
        let timeout = match next {
            Some(at) => {
                let ms = at.saturating_duration_since(Instant::now()).as_micros();
                // poll(2) counts milliseconds: round up so a hold never spins.
                PollTimeout::try_from(ms.div_ceil(1000) as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::from(100u16),
        };
        // SAFETY: both descriptors belong to `a` and `b`, which outlive
        // these borrows (dropped at the end of this iteration).
        let (bfa, bfb) = unsafe { (BorrowedFd::borrow_raw(fd_a), BorrowedFd::borrow_raw(fd_b)) };
        let mut fds = [readable(bfa), readable(bfb)];
        let _ = poll(&mut fds, timeout);
    }
    for dir in [&ab, &ba] {
        let c = &dir.counts;
        println!(
            "{}: {} frames, {} dropped, {} duplicated, {} reordered",
            dir.name, c.frames, c.dropped, c.duplicated, c.reordered
        );
    }
}
