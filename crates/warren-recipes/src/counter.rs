//! `Counter`: kazoo's shared counter, changed with versioned compare-and-set.
//!
//! Twin: `kazoo/recipe/counter.py`. The node at the path holds the value as ASCII
//! `repr(value)` (kazoo's default), or with `support_curator` as a 4-byte big-endian
//! integer (Curator's `SharedCount`); an empty node reads as the default.

use std::marker::PhantomData;

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::path::ensure_path;

/// A value a [`Counter`] can hold: integers and floats, as kazoo's.
pub trait CounterValue: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// `self + other`.
    fn plus(self, other: Self) -> Self;
    /// `-self`.
    fn negate(self) -> Self;
    /// Python's `repr` of the value, as kazoo writes it.
    fn to_repr(self) -> String;
    /// Parses what kazoo (or this crate) wrote.
    fn from_repr(s: &str) -> Option<Self>;
    /// The value as Curator's 32-bit integer, if it is an integer that fits.
    fn to_curator(self) -> Option<i32>;
    /// The value from Curator's 32-bit integer.
    fn from_curator(v: i32) -> Option<Self>;
}

impl CounterValue for i64 {
    fn plus(self, other: i64) -> i64 {
        self.wrapping_add(other)
    }
    fn negate(self) -> i64 {
        self.wrapping_neg()
    }
    fn to_repr(self) -> String {
        self.to_string()
    }
    fn from_repr(s: &str) -> Option<i64> {
        s.trim().parse().ok()
    }
    fn to_curator(self) -> Option<i32> {
        i32::try_from(self).ok()
    }
    fn from_curator(v: i32) -> Option<i64> {
        Some(v.into())
    }
}

impl CounterValue for f64 {
    fn plus(self, other: f64) -> f64 {
        self + other
    }
    fn negate(self) -> f64 {
        -self
    }
    /// Python's float `repr` for ordinary values: the shortest round-trip digits, with
    /// `.0` on whole numbers (`3.0`, `0.1`); `inf`, `-inf`, `nan` as Python spells them.
    fn to_repr(self) -> String {
        if self.is_nan() {
            return "nan".into();
        }
        if self.is_infinite() {
            return if self > 0.0 { "inf" } else { "-inf" }.into();
        }
        let s = self.to_string();
        if s.contains(['.', 'e']) {
            s
        } else {
            format!("{s}.0")
        }
    }
    fn from_repr(s: &str) -> Option<f64> {
        s.trim().parse().ok()
    }
    fn to_curator(self) -> Option<i32> {
        None
    }
    fn from_curator(_: i32) -> Option<f64> {
        None
    }
}

/// kazoo's `Counter`.
pub struct Counter<T: CounterValue> {
    conn: Connection,
    path: String,
    default: T,
    support_curator: bool,
    _value: PhantomData<T>,
}

/// The values around one change of a [`Counter`] (kazoo's `pre_value`, `post_value`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change<T> {
    /// The value the change was applied to.
    pub pre_value: T,
    /// The value written.
    pub post_value: T,
}

impl<T: CounterValue> Counter<T> {
    /// A counter at `path` that reads as `default` while its node is empty.
    pub fn new(conn: &Connection, path: &str, default: T) -> Counter<T> {
        Counter {
            conn: conn.clone(),
            path: path.to_owned(),
            default,
            support_curator: false,
            _value: PhantomData,
        }
    }

    /// A counter stored as Curator's `SharedCount` does (integers only): kazoo's
    /// `support_curator=True`.
    pub fn curator(conn: &Connection, path: &str, default: T) -> Result<Counter<T>> {
        if default.to_curator().is_none() {
            return Err(Error::Inconsistent(
                "when support_curator is enabled the default type must be an int".into(),
            ));
        }
        Ok(Counter {
            support_curator: true,
            ..Counter::new(conn, path, default)
        })
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value.
    pub async fn value(&self) -> Result<T> {
        self.conn
            .retry(|c| async move { self.read(&c).await.map(|(v, _)| v) })
            .await
    }

    /// Adds `delta` atomically, retrying on concurrent changes (kazoo's `counter += delta`).
    pub async fn add(&self, delta: T) -> Result<Change<T>> {
        self.conn
            .retry(|c| async move {
                let (pre_value, version) = self.read(&c).await?;
                let post_value = pre_value.plus(delta);
                let data = self.encode(post_value)?;
                match c.set_data(&self.path, &data, Some(version)).await {
                    Ok(_) => Ok(Change {
                        pre_value,
                        post_value,
                    }),
                    Err(zookeeper_client::Error::BadVersion) => {
                        Err(Error::ForceRetry("counter changed concurrently"))
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    /// Subtracts `delta` (kazoo's `counter -= delta`).
    pub async fn sub(&self, delta: T) -> Result<Change<T>> {
        self.add(delta.negate()).await
    }

    async fn read(&self, c: &zookeeper_client::Client) -> Result<(T, i32)> {
        ensure_path(c, &self.path).await?;
        let (data, stat) = c.get_data(&self.path).await?;
        Ok((self.decode(&data)?, stat.version))
    }

    fn encode(&self, v: T) -> Result<Vec<u8>> {
        if !self.support_curator {
            return Ok(v.to_repr().into_bytes());
        }
        let i = v
            .to_curator()
            .ok_or_else(|| Error::Inconsistent(format!("{v:?} does not fit Curator's int")))?;
        Ok(i.to_be_bytes().to_vec())
    }

    fn decode(&self, data: &[u8]) -> Result<T> {
        if data.is_empty() {
            return Ok(self.default);
        }
        let bad = || Error::Inconsistent(format!("counter {} holds {data:?}", self.path));
        if self.support_curator {
            let bytes: [u8; 4] = data.try_into().map_err(|_| bad())?;
            return T::from_curator(i32::from_be_bytes(bytes)).ok_or_else(bad);
        }
        let text = std::str::from_utf8(data).map_err(|_| bad())?;
        T::from_repr(text).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(3.0f64.to_repr(), "3.0");
        assert_eq!(0.1f64.to_repr(), "0.1");
        assert_eq!((-2.5f64).to_repr(), "-2.5");
        assert_eq!(f64::from_repr("1e+20"), Some(1e20));
        assert_eq!(i64::from_repr("-17"), Some(-17));
    }
}
