//! `warren demo philosophers`: N dining philosophers, each fork a [`Lock`].
//!
//! Philosopher `i` (a process) needs forks `i` and `(i + 1) mod N`, kazoo locks at
//! `BASE/forks/<f>`. Three rules keep the table sane:
//!
//! - **No deadlock: resource ordering.** Each philosopher takes its lower-numbered fork
//!   first, so no cycle of waiters can form; the locks are fair (a queue per fork).
//! - **Fairness: a turn gate.** Philosopher `i` keeps its meal count in `BASE/seats/<i>`
//!   and starts meal `k` only once every seat shows at least `k - 1` meals (it watches the
//!   first laggard's node). Counts only grow, so at every moment the largest count is at
//!   most the smallest plus one; the gate is passed holding no fork, so it cannot deadlock.
//! - **Evidence from one clock.** With both forks held, a philosopher writes its seat
//!   (`eating`) and takes that write's zxid as the meal's start; before letting go it writes
//!   the seat again and takes that zxid as the end. zxids are the server's total order, so
//!   two neighbours' meals overlap iff their `[start, end]` zxid intervals do; the
//!   coordinator checks this for every pair of neighbours from the merged log.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use warren_recipes::path::{PERSISTENT, ensure_path, join};
use warren_recipes::zookeeper_client;
use warren_recipes::{Connection, Lock};

use crate::ServerOpts;
use crate::participant::{connect, emit, run_base, seeded, stopped};
use crate::supervisor::{Ending, Supervisor};

/// Options of `warren demo philosophers`.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Server and session settings.
    #[command(flatten)]
    pub server: ServerOpts,
    /// Number of philosophers (and forks), at least 2.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=64))]
    pub philosophers: u64,
    /// Meals each philosopher eats; 0: until Ctrl-C.
    #[arg(long, default_value_t = 5)]
    pub meals: u64,
    /// Longest meal (each lasts a seeded random time up to this).
    #[arg(long, default_value_t = 60, value_name = "MS")]
    pub eat_ms: u64,
    /// Longest think between meals.
    #[arg(long, default_value_t = 40, value_name = "MS")]
    pub think_ms: u64,
    /// Seed of the eating and thinking times.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Arguments of one philosopher.
#[derive(Args, Debug, Clone)]
pub struct PhilosopherArgs {
    /// ZooKeeper connect string.
    #[arg(long)]
    pub server: String,
    /// Session timeout to ask for.
    #[arg(long, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// The run's base path.
    #[arg(long)]
    pub base: String,
    /// This philosopher's seat, 0-based.
    #[arg(long)]
    pub seat: u64,
    /// Number of seats.
    #[arg(long)]
    pub seats: u64,
    /// Meals to eat; 0: until stopped.
    #[arg(long)]
    pub meals: u64,
    /// Longest meal.
    #[arg(long, value_name = "MS")]
    pub eat_ms: u64,
    /// Longest think.
    #[arg(long, value_name = "MS")]
    pub think_ms: u64,
    /// Seed of the times.
    #[arg(long)]
    pub seed: u64,
}

/// What a philosopher reports, one JSON line each.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// Seated (its seat node exists).
    Ready {
        /// Seat.
        seat: u64,
    },
    /// Ate one meal, holding both forks from before `start` to after `end`.
    Meal {
        /// Seat.
        seat: u64,
        /// Meal number, from 1.
        meal: u64,
        /// zxid of the write made with both forks held, before eating.
        start: i64,
        /// zxid of the write made with both forks held, after eating.
        end: i64,
        /// Time from wanting the forks to holding both (this process's clock).
        waited_ms: u64,
    },
    /// Ate every meal.
    Done {
        /// Meals eaten.
        meals: u64,
    },
    /// Stopped on a signal.
    Stopped {
        /// Meals eaten.
        meals: u64,
    },
}

/// A seat node's data.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Seat {
    meals: u64,
    eating: bool,
}

/// Plays one philosopher until its meals are eaten or SIGTERM/SIGINT.
pub async fn philosopher(a: PhilosopherArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let conn = connect(&a.server, Duration::from_millis(a.session_timeout_ms)).await?;
    let seats = join(&a.base, "seats");
    let me = join(&seats, &a.seat.to_string());
    let seat = serde_json::to_vec(&Seat::default()).expect("seats serialize");
    conn.retry(|c| {
        let (seats, me, seat) = (seats.clone(), me.clone(), seat.clone());
        async move {
            ensure_path(&c, &seats).await?;
            match c.create(&me, &seat, &PERSISTENT).await {
                Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await?;
    emit(&Event::Ready { seat: a.seat });
    let eaten = AtomicU64::new(0);
    let result = tokio::select! {
        r = dine(&a, &conn, &seats, &eaten) => r,
        _ = stopped(&stop) => {
            emit(&Event::Stopped { meals: eaten.load(Ordering::SeqCst) });
            Ok(())
        }
    };
    // Closing the session releases any fork still held, at once.
    conn.close();
    result
}

async fn dine(
    a: &PhilosopherArgs,
    conn: &Connection,
    seats: &str,
    eaten: &AtomicU64,
) -> anyhow::Result<()> {
    let me = join(seats, &a.seat.to_string());
    let identifier = format!("philosopher-{}", a.seat);
    let (left, right) = (a.seat, (a.seat + 1) % a.seats);
    let fork = |f: u64| Lock::new(conn, &join(&a.base, &format!("forks/{f}")), &identifier);
    let (first, second) = (fork(left.min(right)), fork(left.max(right)));
    let mut meal = 0;
    while a.meals == 0 || meal < a.meals {
        meal += 1;
        let mut rng = seeded(a.seed, &identifier, meal);
        wait_turn(conn, seats, a.seats, meal - 1).await?;
        tokio::time::sleep(Duration::from_millis(rng.u64(0..=a.think_ms))).await;
        let wanted = Instant::now();
        first.acquire().await?;
        second.acquire().await?;
        let waited_ms = u64::try_from(wanted.elapsed().as_millis()).unwrap_or(u64::MAX);
        let start = write_seat(conn, &me, meal - 1, true).await?;
        tokio::time::sleep(Duration::from_millis(rng.u64(1..=a.eat_ms.max(1)))).await;
        let end = write_seat(conn, &me, meal, false).await?;
        eaten.store(meal, Ordering::SeqCst);
        emit(&Event::Meal {
            seat: a.seat,
            meal,
            start,
            end,
            waited_ms,
        });
        second.release().await?;
        first.release().await?;
    }
    emit(&Event::Done { meals: meal });
    Ok(())
}

/// Writes this seat's count and state; returns the write's zxid.
async fn write_seat(conn: &Connection, me: &str, meals: u64, eating: bool) -> anyhow::Result<i64> {
    let data = serde_json::to_vec(&Seat { meals, eating }).expect("seats serialize");
    let stat = conn
        .retry(|c| {
            let data = data.clone();
            async move { Ok(c.set_data(me, &data, None).await?) }
        })
        .await?;
    Ok(stat.mzxid)
}

/// Waits until every seat shows at least `need` meals, watching the first laggard.
async fn wait_turn(conn: &Connection, seats: &str, n: u64, need: u64) -> anyhow::Result<()> {
    if need == 0 {
        return Ok(());
    }
    loop {
        let c = conn.client()?;
        let mut laggard = None;
        for i in 0..n {
            let path = join(seats, &i.to_string());
            if meals_at(&c, &path).await? < need {
                laggard = Some(path);
                break;
            }
        }
        let Some(path) = laggard else { return Ok(()) };
        let (_, watcher) = c.check_and_watch_stat(&path).await?;
        // Read again after arming the watch, so a change in between is not missed.
        if meals_at(&c, &path).await? < need {
            watcher.changed().await;
        }
    }
}

async fn meals_at(c: &zookeeper_client::Client, path: &str) -> anyhow::Result<u64> {
    match c.get_data(path).await {
        Ok((data, _)) => Ok(serde_json::from_slice::<Seat>(&data)
            .map(|s| s.meals)
            .unwrap_or(0)),
        Err(zookeeper_client::Error::NoNode) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// What a run of the philosophers demo saw.
#[derive(Debug)]
pub struct PhilosophersSummary {
    /// Number of philosophers.
    pub philosophers: u64,
    /// Meals each was to eat (0: until stopped).
    pub meals_wanted: u64,
    /// Every meal, by seat, in the order eaten.
    pub meals: BTreeMap<u64, Vec<Meal>>,
    /// Seats that said they stopped on a signal.
    pub stopped: Vec<u64>,
    /// How the run ended.
    pub ending: Ending,
}

/// One meal as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meal {
    /// Meal number.
    pub meal: u64,
    /// Start zxid.
    pub start: i64,
    /// End zxid.
    pub end: i64,
    /// Wait for the forks.
    pub waited_ms: u64,
}

impl Meal {
    fn overlaps(&self, other: &Meal) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// Runs the philosophers demo: seat them, let them eat, check the table.
pub async fn coordinate(o: &Opts, sup: &mut Supervisor) -> PhilosophersSummary {
    let base = run_base("philosophers");
    let r = scenario(o, sup, &base).await;
    sup.shutdown().await;
    let mut meals: BTreeMap<u64, Vec<Meal>> = (0..o.philosophers).map(|s| (s, vec![])).collect();
    let mut stopped = Vec::new();
    for (_, e) in sup.events::<Event>() {
        match e {
            Event::Meal {
                seat,
                meal,
                start,
                end,
                waited_ms,
            } => meals.entry(seat).or_default().push(Meal {
                meal,
                start,
                end,
                waited_ms,
            }),
            Event::Stopped { .. } => {}
            _ => continue,
        }
    }
    for l in sup.lines() {
        if let Ok(Event::Stopped { .. }) = serde_json::from_value(l.value.clone())
            && let Some(seat) = l.who.strip_prefix("philosopher-")
        {
            stopped.push(seat.parse().unwrap_or(u64::MAX));
        }
    }
    PhilosophersSummary {
        philosophers: o.philosophers,
        meals_wanted: o.meals,
        meals,
        stopped,
        ending: Ending::of(r, sup),
    }
}

async fn scenario(o: &Opts, sup: &mut Supervisor, base: &str) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for seat in 0..o.philosophers {
        let name = format!("philosopher-{seat}");
        let args: Vec<String> = [
            ("--server", o.server.server.clone()),
            (
                "--session-timeout-ms",
                o.server.session_timeout_ms.to_string(),
            ),
            ("--base", base.to_owned()),
            ("--seat", seat.to_string()),
            ("--seats", o.philosophers.to_string()),
            ("--meals", o.meals.to_string()),
            ("--eat-ms", o.eat_ms.to_string()),
            ("--think-ms", o.think_ms.to_string()),
            ("--seed", o.seed.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect();
        sup.spawn(&name, "philosopher", &args)?;
        names.push(name);
    }
    if o.meals == 0 {
        // Until Ctrl-C: the wait ends only with the signal.
        sup.wait_for("Ctrl-C", Duration::MAX / 4, |_| None::<()>)
            .await?;
    }
    sup.wait_exited(&names, o.server.bound()).await?;
    Ok(())
}

impl PhilosophersSummary {
    /// Pairs of neighbours' meals that overlap in zxid order (must be none).
    pub fn neighbour_overlaps(&self) -> Vec<String> {
        let n = self.philosophers;
        let mut out = Vec::new();
        for i in 0..n {
            let j = (i + 1) % n;
            if n == 2 && j < i {
                continue; // two seats are one pair, not two
            }
            let (a, b) = (&self.meals[&i], &self.meals[&j]);
            for x in a {
                for y in b.iter().filter(|y| x.overlaps(y)) {
                    out.push(format!(
                        "neighbours {i} and {j} ate at once: meal {} of {i} (zxids {}..{}) and \
                         meal {} of {j} (zxids {}..{})",
                        x.meal, x.start, x.end, y.meal, y.start, y.end
                    ));
                }
            }
        }
        out
    }

    /// Meal counts, by seat.
    pub fn counts(&self) -> Vec<u64> {
        self.meals.values().map(|m| m.len() as u64).collect()
    }

    /// Overlapping meals of non-neighbours: evidence the table is not simply taking turns.
    pub fn concurrent_meals(&self) -> usize {
        let n = self.philosophers;
        let mut count = 0;
        for i in 0..n {
            for j in i + 1..n {
                if j == i + 1 || (i == 0 && j == n - 1) {
                    continue;
                }
                for x in &self.meals[&i] {
                    count += self.meals[&j].iter().filter(|y| x.overlaps(y)).count();
                }
            }
        }
        count
    }
}

impl crate::Summary for PhilosophersSummary {
    fn violations(&self) -> Vec<String> {
        let mut out = self.ending.violations();
        out.extend(self.neighbour_overlaps());
        let counts = self.counts();
        let (min, max) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        if max > min + 1 {
            out.push(format!("unfair: meal counts range from {min} to {max}"));
        }
        if self.ending.finished() && self.meals_wanted > 0 && min < self.meals_wanted {
            out.push(format!(
                "a philosopher ate {min} of {} meals (deadlock or starvation)",
                self.meals_wanted
            ));
        }
        out
    }

    fn interrupted(&self) -> bool {
        self.ending.interrupted
    }
}

impl fmt::Display for PhilosophersSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.philosophers;
        writeln!(f, "== philosophers: {n} at the table, {n} forks (Locks)")?;
        writeln!(
            f,
            "{:<12} {:>6} {:>7} {:>14} {:>16}",
            "philosopher", "forks", "meals", "avg wait ms", "zxids of meals"
        )?;
        for (seat, meals) in &self.meals {
            let waits: u64 = meals.iter().map(|m| m.waited_ms).sum();
            let avg = waits.checked_div(meals.len() as u64).unwrap_or(0);
            let span = match (meals.first(), meals.last()) {
                (Some(a), Some(b)) => format!("{}..{}", a.start, b.end),
                _ => "-".into(),
            };
            let forks = format!("{}+{}", seat, (seat + 1) % n);
            writeln!(
                f,
                "{:<12} {forks:>6} {:>7} {avg:>14} {span:>16}",
                format!("#{seat}"),
                meals.len()
            )?;
        }
        let counts = self.counts();
        writeln!(
            f,
            "meal counts within one of each other: {} (min {}, max {})",
            counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1,
            counts.iter().min().unwrap_or(&0),
            counts.iter().max().unwrap_or(&0)
        )?;
        writeln!(
            f,
            "neighbours eating at once (checked on zxids): {}",
            self.neighbour_overlaps().len()
        )?;
        write!(
            f,
            "non-neighbours eating at once: {} pairs of meals",
            self.concurrent_meals()
        )
    }
}
