//! `warren demo lottery`: agencies submit bets in batches, meet at a barrier, then draw.
//!
//! Each agency (a process) reads its bets from a CSV file (`agency,first_name,last_name,
//! document,birth_date,number`; the crate ships `data/agency-1.csv` .. `agency-5.csv`, made
//! by [`sample_csv`]) and stores each bet as `BASE/bets/<agency>/<document>` (data: the CSV
//! line). Bets go in batches, each batch **one `multi`** whose encoded size stays under
//! `--batch-bytes-max`, itself under the server's packet limit (`jute.maxbuffer`). A batch
//! retried after a lost connection is recognised by `NodeExists` on its first bet.
//!
//! Then every agency enters a [`DoubleBarrier`] of N members at `BASE/barrier`; it opens
//! once all N have submitted everything. The draw follows: the first agency through creates
//! `BASE/draw` with the winning number (seeded) and the winners (every stored bet with that
//! number); the others find it there. Each agency prints its own winners.
//!
//! The coordinator checks that every bet of every file is stored, that each agency printed
//! exactly its winners (recomputed from the files and the seed), and that the draw's zxid
//! is after every agency's last batch: nobody drew before everyone was in.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use warren_recipes::path::{PERSISTENT, ensure_path, join};
use warren_recipes::zookeeper_client;
use warren_recipes::{Connection, DoubleBarrier};

use crate::ServerOpts;
use crate::participant::{connect, emit, run_base, seeded, stopped};
use crate::supervisor::{Ending, Supervisor};

/// ZooKeeper's default packet limit (`jute.maxbuffer`): no request may be larger.
pub const PACKET_BYTES_MAX: usize = 0xfffff;

/// Bytes a `multi` create costs beyond its path and data: op header, lengths, the open
/// ACL, flags (rounded up).
const CREATE_OVERHEAD_BYTES: usize = 64;

/// Bytes of a `multi` request beyond its ops: request header and the end marker.
const MULTI_OVERHEAD_BYTES: usize = 32;

/// The CSV header line.
pub const CSV_HEADER: &str = "agency,first_name,last_name,document,birth_date,number";

/// The shipped sample files, agencies 1 to 5.
const SAMPLES: [&str; 5] = [
    include_str!("../data/agency-1.csv"),
    include_str!("../data/agency-2.csv"),
    include_str!("../data/agency-3.csv"),
    include_str!("../data/agency-4.csv"),
    include_str!("../data/agency-5.csv"),
];

/// Bets in each generated sample file.
pub const SAMPLE_BETS: usize = 200;

/// Options of `warren demo lottery`.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Server and session settings.
    #[command(flatten)]
    pub server: ServerOpts,
    /// Number of agencies (1 to 5 use the shipped files; more are generated alike).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub agencies: u32,
    /// Directory with `agency-<n>.csv` files to use instead of the shipped samples.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Largest encoded `multi` of one batch (under the packet limit, 1 MiB).
    #[arg(long, default_value_t = 8192, value_name = "BYTES")]
    pub batch_bytes_max: usize,
    /// Seed of the draw.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
}

/// Arguments of one agency.
#[derive(Args, Debug, Clone)]
pub struct AgencyArgs {
    /// ZooKeeper connect string.
    #[arg(long)]
    pub server: String,
    /// Session timeout to ask for.
    #[arg(long, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// The run's base path.
    #[arg(long)]
    pub base: String,
    /// This agency's number, from 1.
    #[arg(long)]
    pub agency: u32,
    /// Number of agencies (the barrier's size).
    #[arg(long)]
    pub agencies: u32,
    /// Its CSV file (else the shipped sample).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Largest encoded batch.
    #[arg(long, value_name = "BYTES")]
    pub batch_bytes_max: usize,
    /// Seed of the draw.
    #[arg(long)]
    pub seed: u64,
}

/// One bet, a CSV line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bet {
    /// Agency number.
    pub agency: u32,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Document number (unique within an agency).
    pub document: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// The number bet on, 0 to 99.
    pub number: u32,
}

impl Bet {
    /// Parses one CSV line (no quoting: fields hold no commas).
    pub fn parse(line: &str) -> anyhow::Result<Bet> {
        let f: Vec<&str> = line.trim().split(',').map(str::trim).collect();
        anyhow::ensure!(f.len() == 6, "expected 6 fields, got {}: {line:?}", f.len());
        Ok(Bet {
            agency: f[0].parse().context("agency")?,
            first_name: f[1].to_owned(),
            last_name: f[2].to_owned(),
            document: f[3].to_owned(),
            birth_date: f[4].to_owned(),
            number: f[5].parse().context("number")?,
        })
    }

    /// The CSV line.
    pub fn line(&self) -> String {
        format!(
            "{},{},{},{},{},{}",
            self.agency,
            self.first_name,
            self.last_name,
            self.document,
            self.birth_date,
            self.number
        )
    }
}

/// Parses a CSV file's text (header optional, blank lines skipped).
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<Bet>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && l.trim() != CSV_HEADER)
        .map(|(i, l)| Bet::parse(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// The sample CSV of `agency`: [`SAMPLE_BETS`] bets, the same every time.
pub fn sample_csv(agency: u32) -> String {
    const FIRST: [&str; 16] = [
        "Ana", "Bruno", "Carla", "Diego", "Elena", "Facundo", "Gabriela", "Hernan", "Ines",
        "Julian", "Karina", "Lucas", "Maria", "Nicolas", "Olga", "Pablo",
    ];
    const LAST: [&str; 16] = [
        "Acosta",
        "Benitez",
        "Castro",
        "Diaz",
        "Escobar",
        "Fernandez",
        "Gomez",
        "Herrera",
        "Ibarra",
        "Juarez",
        "Luna",
        "Molina",
        "Navarro",
        "Ortiz",
        "Paz",
        "Romero",
    ];
    let mut rng = fastrand::Rng::with_seed(1000 + u64::from(agency));
    let mut out = format!("{CSV_HEADER}\n");
    for i in 0..SAMPLE_BETS as u64 {
        let bet = Bet {
            agency,
            first_name: FIRST[rng.usize(..FIRST.len())].to_owned(),
            last_name: LAST[rng.usize(..LAST.len())].to_owned(),
            document: (20_000_000 + u64::from(agency) * 1_000_000 + i * 37).to_string(),
            birth_date: format!(
                "{}-{:02}-{:02}",
                rng.u32(1950..=2005),
                rng.u32(1..=12),
                rng.u32(1..=28)
            ),
            number: rng.u32(0..100),
        };
        out += &bet.line();
        out.push('\n');
    }
    out
}

/// The bets of `agency`: from `dir/agency-<n>.csv` if given, else the shipped sample (or
/// the generated one past the shipped five).
pub fn bets_of(agency: u32, dir: Option<&std::path::Path>) -> anyhow::Result<Vec<Bet>> {
    let text = match dir {
        Some(d) => {
            let path = d.join(format!("agency-{agency}.csv"));
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        }
        None => match SAMPLES.get(agency as usize - 1) {
            Some(s) => (*s).to_owned(),
            None => sample_csv(agency),
        },
    };
    parse_csv(&text)
}

/// The draw: a winning number from `seed`, and the winners among `bets`.
pub fn draw(seed: u64, bets: &[Bet]) -> Draw {
    let number = seeded(seed, "draw", 0).u32(0..100);
    let mut winners: Vec<Bet> = bets
        .iter()
        .filter(|b| b.number == number)
        .cloned()
        .collect();
    winners.sort();
    Draw { number, winners }
}

/// The content of `BASE/draw`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// The winning number.
    pub number: u32,
    /// Every bet on it, sorted.
    pub winners: Vec<Bet>,
}

/// What an agency reports, one JSON line each.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// One batch stored by one `multi`.
    Batch {
        /// Agency.
        agency: u32,
        /// Bets in it.
        bets: usize,
        /// Its encoded size (estimated from above).
        bytes: usize,
        /// zxid of the `multi`.
        zxid: i64,
    },
    /// Every bet submitted; entering the barrier.
    Submitted {
        /// Agency.
        agency: u32,
        /// Bets.
        bets: usize,
        /// zxid of its last batch.
        last_zxid: i64,
    },
    /// Through the barrier: every agency has submitted.
    Through {
        /// Agency.
        agency: u32,
    },
    /// The draw, as found in `BASE/draw`.
    Drawn {
        /// Agency.
        agency: u32,
        /// Winning number.
        number: u32,
        /// Winners in all agencies.
        winners: usize,
        /// zxid that created the draw node.
        zxid: i64,
        /// True if this agency made the draw.
        drew: bool,
    },
    /// One of this agency's winners.
    Winner {
        /// The winning bet.
        bet: Bet,
    },
    /// Finished.
    Done {
        /// Agency.
        agency: u32,
    },
    /// Stopped on a signal.
    Stopped {
        /// Agency.
        agency: u32,
    },
}

/// Plays one agency until done or SIGTERM/SIGINT.
pub async fn agency(a: AgencyArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.batch_bytes_max + MULTI_OVERHEAD_BYTES < PACKET_BYTES_MAX,
        "--batch-bytes-max {} is not under the packet limit of {PACKET_BYTES_MAX} bytes",
        a.batch_bytes_max
    );
    let bets = match &a.csv {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_csv(&text)?
        }
        None => bets_of(a.agency, None)?,
    };
    let conn = connect(&a.server, Duration::from_millis(a.session_timeout_ms)).await?;
    let result = tokio::select! {
        r = run_agency(&a, &conn, &bets) => r,
        _ = stopped(&stop) => {
            emit(&Event::Stopped { agency: a.agency });
            Ok(())
        }
    };
    conn.close();
    result
}

async fn run_agency(a: &AgencyArgs, conn: &Connection, bets: &[Bet]) -> anyhow::Result<()> {
    let dir = join(&join(&a.base, "bets"), &a.agency.to_string());
    conn.retry(|c| {
        let dir = dir.clone();
        async move { ensure_path(&c, &dir).await.map(|_| ()) }
    })
    .await?;
    let mut last_zxid = 0;
    for batch in batches(&dir, bets, a.batch_bytes_max) {
        let zxid = submit(conn, &batch.ops).await?;
        last_zxid = zxid;
        emit(&Event::Batch {
            agency: a.agency,
            bets: batch.ops.len(),
            bytes: batch.bytes,
            zxid,
        });
    }
    emit(&Event::Submitted {
        agency: a.agency,
        bets: bets.len(),
        last_zxid,
    });
    let identifier = format!("agency-{}", a.agency);
    let mut barrier = DoubleBarrier::new(
        conn,
        &join(&a.base, "barrier"),
        a.agencies as usize,
        &identifier,
    );
    barrier.enter().await?;
    emit(&Event::Through { agency: a.agency });
    let (draw, zxid, drew) = find_or_make_draw(conn, &a.base, a.seed).await?;
    emit(&Event::Drawn {
        agency: a.agency,
        number: draw.number,
        winners: draw.winners.len(),
        zxid,
        drew,
    });
    for bet in draw.winners.iter().filter(|b| b.agency == a.agency) {
        emit(&Event::Winner { bet: bet.clone() });
    }
    barrier.leave().await?;
    emit(&Event::Done { agency: a.agency });
    Ok(())
}

/// One batch: `(path, data)` creates and their encoded size.
struct Batch {
    ops: Vec<(String, Vec<u8>)>,
    bytes: usize,
}

/// Cuts `bets` into batches whose encoded `multi` stays within `bytes_max`.
fn batches(dir: &str, bets: &[Bet], bytes_max: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut current = Batch {
        ops: Vec::new(),
        bytes: MULTI_OVERHEAD_BYTES,
    };
    for bet in bets {
        let path = join(dir, &bet.document);
        let data = bet.line().into_bytes();
        let cost = path.len() + data.len() + CREATE_OVERHEAD_BYTES;
        if !current.ops.is_empty() && current.bytes + cost > bytes_max {
            out.push(std::mem::replace(
                &mut current,
                Batch {
                    ops: Vec::new(),
                    bytes: MULTI_OVERHEAD_BYTES,
                },
            ));
        }
        current.bytes += cost;
        current.ops.push((path, data));
    }
    if !current.ops.is_empty() {
        out.push(current);
    }
    out
}

/// Stores one batch with one `multi`; returns its zxid. A batch that a lost connection
/// hid from us is found by its first bet.
async fn submit(conn: &Connection, ops: &[(String, Vec<u8>)]) -> anyhow::Result<i64> {
    let zxid = conn
        .retry(|c| async move {
            let mut multi = c.new_multi_writer();
            for (path, data) in ops {
                multi.add_create(path, data, &PERSISTENT)?;
            }
            match multi.commit().await {
                Ok(results) => match results.first() {
                    Some(zookeeper_client::MultiWriteResult::Create { stat, .. }) => Ok(stat.czxid),
                    _ => Ok(0),
                },
                Err(zookeeper_client::MultiWriteError::OperationFailed {
                    index: 0,
                    source: zookeeper_client::Error::NodeExists,
                }) => {
                    let (_, stat) = c.get_data(&ops[0].0).await?;
                    Ok(stat.czxid)
                }
                Err(e) => Err(zookeeper_client::Error::from(e).into()),
            }
        })
        .await?;
    Ok(zxid)
}

/// Reads `BASE/draw`, making it first if nobody has: `(draw, its czxid, made by us)`.
async fn find_or_make_draw(
    conn: &Connection,
    base: &str,
    seed: u64,
) -> anyhow::Result<(Draw, i64, bool)> {
    let path = join(base, "draw");
    let c = conn.client()?;
    let mut drew = false;
    if c.check_stat(&path).await?.is_none() {
        let bets = all_bets(conn, base).await?;
        let draw = draw(seed, &bets);
        let data = serde_json::to_vec(&draw).expect("draws serialize");
        match c.create(&path, &data, &PERSISTENT).await {
            Ok(_) => drew = true,
            Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (data, stat) = c.get_data(&path).await?;
    let draw: Draw = serde_json::from_slice(&data).context("the draw node")?;
    Ok((draw, stat.czxid, drew))
}

/// Every bet stored under `BASE/bets`.
pub async fn all_bets(conn: &Connection, base: &str) -> anyhow::Result<Vec<Bet>> {
    let c = conn.client()?;
    let root = join(base, "bets");
    let mut out = Vec::new();
    for agency in c.list_children(&root).await? {
        let dir = join(&root, &agency);
        for doc in c.list_children(&dir).await? {
            let (data, _) = c.get_data(&join(&dir, &doc)).await?;
            out.push(Bet::parse(&String::from_utf8_lossy(&data))?);
        }
    }
    Ok(out)
}

/// What a run of the lottery demo saw.
#[derive(Debug)]
pub struct LotterySummary {
    /// Bets in the files, by agency.
    pub expected: BTreeMap<u32, Vec<Bet>>,
    /// Bets found stored in warren after the run, by agency.
    pub stored: BTreeMap<u32, usize>,
    /// The draw recomputed from the files and the seed.
    pub expected_draw: Draw,
    /// Every agency event, in the order received.
    pub events: Vec<(String, Event)>,
    /// The batch size bound used.
    pub batch_bytes_max: usize,
    /// How the run ended.
    pub ending: Ending,
}

/// Runs the lottery demo: agencies submit, meet, draw; then the check.
pub async fn coordinate(o: &Opts, sup: &mut Supervisor) -> LotterySummary {
    let base = run_base("lottery");
    let mut expected = BTreeMap::new();
    let mut stored = BTreeMap::new();
    let r = async {
        for agency in 1..=o.agencies {
            expected.insert(agency, bets_of(agency, o.data.as_deref())?);
        }
        scenario(o, sup, &base).await?;
        let conn = connect(&o.server.server, o.server.session_timeout()).await?;
        for bet in all_bets(&conn, &base).await? {
            *stored.entry(bet.agency).or_insert(0) += 1;
        }
        conn.close();
        anyhow::Ok(())
    }
    .await;
    sup.shutdown().await;
    let all: Vec<Bet> = expected.values().flatten().cloned().collect();
    LotterySummary {
        expected_draw: draw(o.seed, &all),
        expected,
        stored,
        events: sup.events::<Event>(),
        batch_bytes_max: o.batch_bytes_max,
        ending: Ending::of(r, sup),
    }
}

async fn scenario(o: &Opts, sup: &mut Supervisor, base: &str) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for agency in 1..=o.agencies {
        let name = format!("agency-{agency}");
        let mut args: Vec<String> = [
            ("--server", o.server.server.clone()),
            (
                "--session-timeout-ms",
                o.server.session_timeout_ms.to_string(),
            ),
            ("--base", base.to_owned()),
            ("--agency", agency.to_string()),
            ("--agencies", o.agencies.to_string()),
            ("--batch-bytes-max", o.batch_bytes_max.to_string()),
            ("--seed", o.seed.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect();
        if let Some(dir) = &o.data {
            let file = dir.join(format!("agency-{agency}.csv"));
            args.extend(["--csv".to_owned(), file.display().to_string()]);
        }
        sup.spawn(&name, "agency", &args)?;
        names.push(name);
    }
    sup.wait_exited(&names, o.server.bound()).await?;
    Ok(())
}

impl LotterySummary {
    /// The winners each agency printed, sorted.
    pub fn printed_winners(&self) -> BTreeMap<u32, Vec<Bet>> {
        let mut out: BTreeMap<u32, Vec<Bet>> = BTreeMap::new();
        for (who, e) in &self.events {
            if let Event::Winner { bet } = e {
                let agency = who.strip_prefix("agency-").and_then(|n| n.parse().ok());
                out.entry(agency.unwrap_or(0))
                    .or_default()
                    .push(bet.clone());
            }
        }
        out.values_mut().for_each(|v| v.sort());
        out
    }

    /// Batches by agency: `(count, largest bytes)`.
    pub fn batches(&self) -> BTreeMap<u32, (usize, usize)> {
        let mut out: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
        for (_, e) in &self.events {
            if let Event::Batch { agency, bytes, .. } = e {
                let b = out.entry(*agency).or_default();
                b.0 += 1;
                b.1 = b.1.max(*bytes);
            }
        }
        out
    }

    fn draw_zxid(&self) -> Option<i64> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Drawn { zxid, .. } => Some(*zxid),
            _ => None,
        })
    }
}

impl crate::Summary for LotterySummary {
    fn violations(&self) -> Vec<String> {
        let mut out = self.ending.violations();
        if !self.ending.finished() {
            return out;
        }
        for (agency, bets) in &self.expected {
            let stored = self.stored.get(agency).copied().unwrap_or(0);
            if stored != bets.len() {
                out.push(format!(
                    "agency {agency}: {stored} of {} bets stored",
                    bets.len()
                ));
            }
        }
        let printed = self.printed_winners();
        for agency in self.expected.keys() {
            let want: Vec<Bet> = self
                .expected_draw
                .winners
                .iter()
                .filter(|b| b.agency == *agency)
                .cloned()
                .collect();
            let got = printed.get(agency).cloned().unwrap_or_default();
            if want != got {
                out.push(format!(
                    "agency {agency} printed {} winners, the draw has {}",
                    got.len(),
                    want.len()
                ));
            }
        }
        let draw_zxid = self.draw_zxid().unwrap_or(0);
        for (who, e) in &self.events {
            if let Event::Batch { zxid, bytes, .. } = e {
                if *zxid >= draw_zxid {
                    out.push(format!(
                        "{who} stored a batch at zxid {zxid}, after the draw at {draw_zxid}"
                    ));
                }
                if *bytes > self.batch_bytes_max || *bytes >= PACKET_BYTES_MAX {
                    out.push(format!("{who} sent a batch of {bytes} bytes"));
                }
            }
        }
        let drawers = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Drawn { drew: true, .. }));
        if drawers.count() != 1 {
            out.push("the draw was not made exactly once".into());
        }
        out
    }

    fn interrupted(&self) -> bool {
        self.ending.interrupted
    }
}

impl fmt::Display for LotterySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let batches = self.batches();
        let printed = self.printed_winners();
        writeln!(f, "== lottery: {} agencies", self.expected.len())?;
        writeln!(
            f,
            "{:<8} {:>6} {:>7} {:>8} {:>15} {:>8}",
            "agency", "bets", "stored", "batches", "largest batch B", "winners"
        )?;
        for (agency, bets) in &self.expected {
            let (n, largest) = batches.get(agency).copied().unwrap_or_default();
            writeln!(
                f,
                "{agency:<8} {:>6} {:>7} {n:>8} {largest:>15} {:>8}",
                bets.len(),
                self.stored.get(agency).copied().unwrap_or(0),
                printed.get(agency).map_or(0, Vec::len)
            )?;
        }
        writeln!(
            f,
            "batch bound {} B (packet limit {PACKET_BYTES_MAX} B); draw at zxid {}",
            self.batch_bytes_max,
            self.draw_zxid().unwrap_or(0)
        )?;
        writeln!(
            f,
            "winning number {}: {} winners",
            self.expected_draw.number,
            self.expected_draw.winners.len()
        )?;
        for (agency, winners) in &printed {
            for b in winners {
                writeln!(
                    f,
                    "  agency {agency}: {} {} (document {}, born {})",
                    b.first_name, b.last_name, b.document, b.birth_date
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `WARREN_DEMOS_WRITE_SAMPLES=1 cargo test -p warren-demos samples` rewrites `data/`
    /// (then run it again: the files are compiled in).
    #[test]
    fn the_shipped_samples_are_the_generated_ones() {
        if std::env::var_os("WARREN_DEMOS_WRITE_SAMPLES").is_some() {
            for agency in 1..=SAMPLES.len() as u32 {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
                std::fs::write(dir.join(format!("agency-{agency}.csv")), sample_csv(agency))
                    .unwrap();
            }
            return;
        }
        for (i, shipped) in SAMPLES.iter().enumerate() {
            let agency = i as u32 + 1;
            assert_eq!(*shipped, sample_csv(agency), "data/agency-{agency}.csv");
            assert_eq!(parse_csv(shipped).unwrap().len(), SAMPLE_BETS);
        }
    }

    #[test]
    fn batches_stay_under_their_bound_and_keep_every_bet() {
        let bets = bets_of(1, None).unwrap();
        let cut = batches("/b/1", &bets, 2048);
        assert!(cut.len() > 1);
        assert!(cut.iter().all(|b| b.bytes <= 2048));
        assert_eq!(cut.iter().map(|b| b.ops.len()).sum::<usize>(), bets.len());
    }

    #[test]
    fn bets_round_trip_through_their_csv_line() {
        let bet = Bet::parse("3,Ana,Paz,23000037,1980-02-03,42").unwrap();
        assert_eq!(bet.line(), "3,Ana,Paz,23000037,1980-02-03,42");
        assert!(Bet::parse("3,Ana,Paz").is_err());
    }
}
