//! `warren demo rudp`: reliable delivery over UDP (127.0.0.1), stop-and-wait.
//!
//! A packet is 1 byte of type (0 data, 1 ack), a 4-byte big-endian packet id, then the
//! payload. [`RudpSocket::sendto`] sends a data packet and blocks until its ack comes back,
//! sending it again every retransmission timeout, up to an overall timeout.
//! [`RudpSocket::recvfrom`] acknowledges every data packet it sees (duplicates too, since
//! the first ack may be the one that was lost) and hands each packet id from a peer to the
//! application once.
//!
//! Faults are injected on the way out of each socket: a packet is dropped with probability
//! `loss` and sent twice with probability `dup` (seeded). No ZooKeeper is involved: the
//! receiver and the sender are two processes, and the coordinator passes the receiver's
//! port to the sender.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::participant::{emit, stopped};
use crate::supervisor::{Ending, Supervisor};

/// Packet type of data.
pub const DATA: u8 = 0;
/// Packet type of an acknowledgement.
pub const ACK: u8 = 1;
/// Bytes before the payload: type and packet id.
pub const HEADER_BYTES: usize = 5;
/// Largest payload: a datagram that fits an Ethernet MTU with IPv4 and UDP headers.
pub const PAYLOAD_BYTES_MAX: usize = 1472 - HEADER_BYTES;
/// Delivered ids remembered per peer, for dedup; older ids than the newest minus this are
/// forgotten (stop-and-wait never has more than one in flight).
const SEEN_IDS_MAX: u32 = 4096;

/// Encodes a packet.
pub fn encode(kind: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER_BYTES + payload.len());
    p.push(kind);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Decodes a packet: `(type, id, payload)`, or `None` if it is too short or of no known type.
pub fn decode(packet: &[u8]) -> Option<(u8, u32, &[u8])> {
    let (&kind, rest) = packet.split_first()?;
    if kind != DATA && kind != ACK || rest.len() < 4 {
        return None;
    }
    let id = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
    Some((kind, id, &rest[4..]))
}

/// Fault injection on the way out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Faults {
    /// Probability of dropping a packet.
    pub loss: f64,
    /// Probability of sending a packet twice.
    pub dup: f64,
    /// Seed of the choices.
    pub seed: u64,
}

/// Counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Datagrams put on the wire (duplicates included).
    pub sent: u64,
    /// Packets dropped by the injected loss.
    pub dropped: u64,
    /// Packets sent twice by the injected duplication.
    pub duplicated: u64,
    /// Data packets sent again after a retransmission timeout.
    pub retransmits: u64,
    /// Data packets received again and not delivered (dedup by id).
    pub duplicates_discarded: u64,
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No ack within the timeout.
    #[error("packet {id} not acknowledged within {timeout:?}")]
    TimedOut {
        /// The packet id.
        id: u32,
        /// The timeout.
        timeout: Duration,
    },
    /// The payload does not fit a datagram.
    #[error("payload of {0} bytes is over {PAYLOAD_BYTES_MAX}")]
    TooLarge(usize),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A UDP socket with stop-and-wait reliable delivery.
pub struct RudpSocket {
    sock: UdpSocket,
    next_id: u32,
    rto: Duration,
    faults: Faults,
    rng: fastrand::Rng,
    seen: HashMap<SocketAddr, BTreeSet<u32>>,
    /// Data delivered while a send waited for its ack, kept for `recvfrom`.
    pending: VecDeque<(Vec<u8>, SocketAddr)>,
    /// Counters.
    pub stats: Stats,
}

impl RudpSocket {
    /// Binds to `addr`, retransmitting every `rto`, with `faults` injected.
    pub fn bind(addr: &str, rto: Duration, faults: Faults) -> io::Result<RudpSocket> {
        Ok(RudpSocket {
            sock: UdpSocket::bind(addr)?,
            next_id: 0,
            rto,
            faults,
            rng: fastrand::Rng::with_seed(faults.seed),
            seen: HashMap::new(),
            pending: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sends `payload` to `to` and blocks until it is acknowledged (or `timeout` passes).
    /// Returns the packet id and how many times it was sent.
    pub fn sendto(
        &mut self,
        payload: &[u8],
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<(u32, u32), SendError> {
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(SendError::TooLarge(payload.len()));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let packet = encode(DATA, id, payload);
        let deadline = Instant::now() + timeout;
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 1 {
                self.stats.retransmits += 1;
            }
            self.transmit(&packet, to)?;
            let retry_at = (Instant::now() + self.rto).min(deadline);
            if self.await_ack(id, to, retry_at)? {
                return Ok((id, tries));
            }
            if Instant::now() >= deadline {
                return Err(SendError::TimedOut { id, timeout });
            }
        }
    }

    /// Waits until `until` for the ack of `id` from `to`, acknowledging data meanwhile.
    fn await_ack(&mut self, id: u32, to: SocketAddr, until: Instant) -> io::Result<bool> {
        let mut buf = [0u8; HEADER_BYTES + PAYLOAD_BYTES_MAX];
        loop {
            let Some((n, from)) = self.recv_until(&mut buf, until)? else {
                return Ok(false);
            };
            match decode(&buf[..n]) {
                Some((ACK, acked, _)) if acked == id && from == to => return Ok(true),
                Some((DATA, data_id, payload)) => {
                    let payload = payload.to_vec();
                    if let Some(p) = self.on_data(data_id, payload, from)? {
                        self.pending.push_back((p, from));
                    }
                }
                _ => {} // a stale ack or garbage
            }
        }
    }

    /// Receives the next message not delivered before (acknowledging every data packet),
    /// or `None` if `timeout` passes first.
    pub fn recvfrom(&mut self, timeout: Duration) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
        if let Some(p) = self.pending.pop_front() {
            return Ok(Some(p));
        }
        let until = Instant::now() + timeout;
        let mut buf = [0u8; HEADER_BYTES + PAYLOAD_BYTES_MAX];
        loop {
            let Some((n, from)) = self.recv_until(&mut buf, until)? else {
                return Ok(None);
            };
            if let Some((DATA, id, payload)) = decode(&buf[..n]) {
                let payload = payload.to_vec();
                if let Some(p) = self.on_data(id, payload, from)? {
                    return Ok(Some((p, from)));
                }
            }
        }
    }

    /// Acks data packet `id` and returns its payload if it is new.
    fn on_data(
        &mut self,
        id: u32,
        payload: Vec<u8>,
        from: SocketAddr,
    ) -> io::Result<Option<Vec<u8>>> {
        self.transmit(&encode(ACK, id, &[]), from)?;
        let seen = self.seen.entry(from).or_default();
        if !seen.insert(id) {
            self.stats.duplicates_discarded += 1;
            return Ok(None);
        }
        let newest = *seen.last().expect("just inserted");
        while seen
            .first()
            .is_some_and(|o| newest.wrapping_sub(*o) > SEEN_IDS_MAX)
        {
            seen.pop_first();
        }
        Ok(Some(payload))
    }

    fn recv_until(
        &mut self,
        buf: &mut [u8],
        until: Instant,
    ) -> io::Result<Option<(usize, SocketAddr)>> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.recv_from(buf) {
                Ok(got) => return Ok(Some(got)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // A previous datagram to a closed port (ICMP) or a signal: not ours to fail.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts `packet` on the wire, through the injected faults.
    fn transmit(&mut self, packet: &[u8], to: SocketAddr) -> io::Result<()> {
        if self.rng.f64() < self.faults.loss {
            self.stats.dropped += 1;
            return Ok(());
        }
        self.sock.send_to(packet, to)?;
        self.stats.sent += 1;
        if self.rng.f64() < self.faults.dup {
            self.sock.send_to(packet, to)?;
            self.stats.sent += 1;
            self.stats.duplicated += 1;
        }
        Ok(())
    }
}

/// Options of `warren demo rudp`.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Messages to send.
    #[arg(long, default_value_t = 50)]
    pub messages: u32,
    /// Probability that a packet (data or ack) is dropped.
    #[arg(long, default_value_t = 0.3)]
    pub loss: f64,
    /// Probability that a packet is sent twice.
    #[arg(long, default_value_t = 0.2)]
    pub dup: f64,
    /// Seed of the faults.
    #[arg(long, default_value_t = 9)]
    pub seed: u64,
    /// Retransmission timeout.
    #[arg(long, default_value_t = 20, value_name = "MS")]
    pub rto_ms: u64,
    /// A send that is not acknowledged within this fails.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Bound on each wait of the coordinator.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub bound_s: u64,
}

/// Arguments shared by both rudp roles.
#[derive(Args, Debug, Clone)]
pub struct FaultArgs {
    /// Loss probability.
    #[arg(long)]
    pub loss: f64,
    /// Duplication probability.
    #[arg(long)]
    pub dup: f64,
    /// Seed.
    #[arg(long)]
    pub seed: u64,
    /// Retransmission timeout.
    #[arg(long, value_name = "MS")]
    pub rto_ms: u64,
}

/// Arguments of the receiver.
#[derive(Args, Debug, Clone)]
pub struct ReceiverArgs {
    /// Faults and timing.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Arguments of the sender.
#[derive(Args, Debug, Clone)]
pub struct SenderArgs {
    /// Faults and timing.
    #[command(flatten)]
    pub faults: FaultArgs,
    /// The receiver's port on 127.0.0.1.
    #[arg(long)]
    pub to: u16,
    /// Messages to send.
    #[arg(long)]
    pub messages: u32,
    /// Timeout of each send.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: u64,
}

/// What a rudp participant reports, one JSON line each.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// The receiver is bound.
    Listening {
        /// Its port.
        port: u16,
    },
    /// The receiver handed a message to the application.
    Delivered {
        /// The payload, as text.
        message: String,
    },
    /// The sender's message was acknowledged.
    Acked {
        /// The payload.
        message: String,
        /// Times it was sent.
        tries: u32,
    },
    /// A send failed.
    Failed {
        /// The payload.
        message: String,
        /// Why.
        error: String,
    },
    /// A socket's counters at the end.
    Stats {
        /// The counters.
        stats: Stats,
    },
}

fn socket(f: &FaultArgs, salt: u64) -> io::Result<RudpSocket> {
    let faults = Faults {
        loss: f.loss,
        dup: f.dup,
        seed: f.seed ^ salt,
    };
    RudpSocket::bind("127.0.0.1:0", Duration::from_millis(f.rto_ms), faults)
}

/// A flag that turns true with `stop`, for blocking loops.
fn stop_flag(stop: &watch::Receiver<bool>) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (f, stop) = (flag.clone(), stop.clone());
    tokio::spawn(async move {
        stopped(&stop).await;
        f.store(true, Ordering::SeqCst);
    });
    flag
}

/// Plays the receiver until SIGTERM/SIGINT.
pub async fn receiver(a: ReceiverArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut sock = socket(&a.faults, 1)?;
    emit(&Event::Listening {
        port: sock.local_addr()?.port(),
    });
    let stop = stop_flag(&stop);
    tokio::task::spawn_blocking(move || {
        while !stop.load(Ordering::SeqCst) {
            if let Some((payload, _)) = sock.recvfrom(Duration::from_millis(100))? {
                emit(&Event::Delivered {
                    message: String::from_utf8_lossy(&payload).into_owned(),
                });
            }
        }
        emit(&Event::Stats { stats: sock.stats });
        anyhow::Ok(())
    })
    .await?
}

/// Plays the sender: every message, one at a time, until done or SIGTERM/SIGINT.
pub async fn sender(a: SenderArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut sock = socket(&a.faults, 2)?;
    let to = SocketAddr::from(([127, 0, 0, 1], a.to));
    let timeout = Duration::from_millis(a.timeout_ms);
    let stop = stop_flag(&stop);
    tokio::task::spawn_blocking(move || {
        for i in 0..a.messages {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let message = format!("message {i}");
            match sock.sendto(message.as_bytes(), to, timeout) {
                Ok((_, tries)) => emit(&Event::Acked { message, tries }),
                Err(e) => emit(&Event::Failed {
                    message,
                    error: e.to_string(),
                }),
            }
        }
        emit(&Event::Stats { stats: sock.stats });
        anyhow::Ok(())
    })
    .await?
}

/// What a run of the rudp demo saw.
#[derive(Debug)]
pub struct RudpSummary {
    /// Messages the sender was to send.
    pub messages: u32,
    /// Messages the receiver delivered, in order.
    pub delivered: Vec<String>,
    /// Messages acknowledged, with their tries.
    pub acked: Vec<(String, u32)>,
    /// Sends that failed.
    pub failed: Vec<String>,
    /// The sender's counters.
    pub sender: Stats,
    /// The receiver's counters.
    pub receiver: Stats,
    /// The options' fault probabilities: (loss, dup).
    pub faults: (f64, f64),
    /// How the run ended.
    pub ending: Ending,
}

/// Runs the rudp demo: receiver, then sender, then the count.
pub async fn coordinate(o: &Opts, sup: &mut Supervisor) -> RudpSummary {
    let r = scenario(o, sup).await;
    sup.shutdown().await;
    let mut s = RudpSummary {
        messages: o.messages,
        delivered: vec![],
        acked: vec![],
        failed: vec![],
        sender: Stats::default(),
        receiver: Stats::default(),
        faults: (o.loss, o.dup),
        ending: Ending::of(r, sup),
    };
    for (who, e) in sup.events::<Event>() {
        match e {
            Event::Delivered { message } => s.delivered.push(message),
            Event::Acked { message, tries } => s.acked.push((message, tries)),
            Event::Failed { message, error } => s.failed.push(format!("{message}: {error}")),
            Event::Stats { stats } if who == "sender" => s.sender = stats,
            Event::Stats { stats } => s.receiver = stats,
            Event::Listening { .. } => {}
        }
    }
    s
}

async fn scenario(o: &Opts, sup: &mut Supervisor) -> anyhow::Result<()> {
    let faults: Vec<String> = [
        ("--loss", o.loss.to_string()),
        ("--dup", o.dup.to_string()),
        ("--seed", o.seed.to_string()),
        ("--rto-ms", o.rto_ms.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect();
    let bound = Duration::from_secs(o.bound_s);
    sup.spawn("receiver", "rudp-receiver", &faults)?;
    let port = sup
        .wait_for(
            "the receiver's port",
            bound,
            |l| match serde_json::from_value(l.value.clone()) {
                Ok(Event::Listening { port }) => Some(port),
                _ => None,
            },
        )
        .await?;
    let mut args = faults.clone();
    args.extend([
        "--to".into(),
        port.to_string(),
        "--messages".into(),
        o.messages.to_string(),
        "--timeout-ms".into(),
        o.timeout_ms.to_string(),
    ]);
    sup.spawn("sender", "rudp-sender", &args)?;
    sup.wait_exited(&["sender".to_owned()], bound).await?;
    Ok(())
}

impl crate::Summary for RudpSummary {
    fn violations(&self) -> Vec<String> {
        let mut out = self.ending.violations();
        out.extend(self.failed.iter().map(|f| format!("send failed: {f}")));
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for m in &self.delivered {
            *counts.entry(m.as_str()).or_default() += 1;
        }
        for (m, n) in &counts {
            if *n > 1 {
                out.push(format!("{m:?} delivered {n} times"));
            }
        }
        for (m, _) in &self.acked {
            if !counts.contains_key(m.as_str()) {
                out.push(format!("{m:?} acknowledged but never delivered"));
            }
        }
        if self.ending.finished() {
            let want: Vec<String> = (0..self.messages).map(|i| format!("message {i}")).collect();
            if self.delivered != want {
                out.push(format!(
                    "delivered {} messages, not messages 0..{} in order",
                    self.delivered.len(),
                    self.messages
                ));
            }
        }
        out
    }

    fn interrupted(&self) -> bool {
        self.ending.interrupted
    }
}

impl fmt::Display for RudpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (loss, dup) = self.faults;
        writeln!(
            f,
            "== rudp: {} messages over UDP, loss {loss}, duplication {dup} (each way)",
            self.messages
        )?;
        let most = self.acked.iter().max_by_key(|(_, t)| *t);
        writeln!(
            f,
            "acknowledged {} of {}; most tries for one message: {}",
            self.acked.len(),
            self.messages,
            most.map_or("-".into(), |(m, t)| format!("{t} ({m})"))
        )?;
        writeln!(
            f,
            "{:<9} {:>6} {:>8} {:>11} {:>12} {:>19}",
            "socket", "sent", "dropped", "duplicated", "retransmits", "duplicates dropped"
        )?;
        for (name, s) in [("sender", self.sender), ("receiver", self.receiver)] {
            writeln!(
                f,
                "{name:<9} {:>6} {:>8} {:>11} {:>12} {:>19}",
                s.sent, s.dropped, s.duplicated, s.retransmits, s.duplicates_discarded
            )?;
        }
        let unique: BTreeSet<&String> = self.delivered.iter().collect();
        write!(
            f,
            "delivered to the application: {} messages, {} distinct",
            self.delivered.len(),
            unique.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_bad_ones_are_refused() {
        let p = encode(DATA, 0x0102_0304, b"hi");
        assert_eq!(p, [0, 1, 2, 3, 4, b'h', b'i']);
        assert_eq!(decode(&p), Some((DATA, 0x0102_0304, &b"hi"[..])));
        assert_eq!(decode(&encode(ACK, 7, &[])), Some((ACK, 7, &[][..])));
        assert_eq!(decode(&[1, 0, 0]), None);
        assert_eq!(decode(&[9, 0, 0, 0, 0]), None);
    }

    #[test]
    fn every_message_arrives_once_through_loss_and_duplication() {
        let faults = |seed| Faults {
            loss: 0.3,
            dup: 0.3,
            seed,
        };
        let rto = Duration::from_millis(5);
        let mut rx = RudpSocket::bind("127.0.0.1:0", rto, faults(1)).unwrap();
        let mut tx = RudpSocket::bind("127.0.0.1:0", rto, faults(2)).unwrap();
        let to = rx.local_addr().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            while !d.load(Ordering::SeqCst) {
                if let Some((p, _)) = rx.recvfrom(Duration::from_millis(20)).unwrap() {
                    got.push(p);
                }
            }
            (got, rx.stats)
        });
        for i in 0..30u8 {
            tx.sendto(&[i], to, Duration::from_secs(10)).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let (got, rx_stats) = reader.join().unwrap();
        assert_eq!(got, (0..30u8).map(|i| vec![i]).collect::<Vec<_>>());
        assert!(tx.stats.dropped + rx_stats.dropped > 0);
        assert!(tx.stats.duplicated + rx_stats.duplicated > 0);
    }
}
