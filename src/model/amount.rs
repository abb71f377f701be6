//! [`Amount`]: an exact decimal quantity, so that sums never depend on the order they were made in.
//!
//! Uses nothing else in the crate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact decimal amount of some unit (dollars, tokens, seconds …): a whole number of
/// pico-units (10⁻¹² of the unit).
///
/// Costs are summed as `Amount`s, not as `f64`s, so a total is the same whatever order its parts
/// were added in, and in-file totals never drift from the log. Amounts come in and go out as
/// JSON numbers; twelve decimal places keep a per-token price of a hundredth of a cent per
/// million tokens exact.
///
/// ```
/// use oidb::costs::Amount;
///
/// let a = Amount::from_f64(0.1).unwrap();
/// let b = Amount::from_f64(0.2).unwrap();
/// assert_eq!(a + b, Amount::from_f64(0.3).unwrap()); // unlike 0.1 + 0.2 in f64
/// assert_eq!((a + b).to_string(), "0.3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i128);

/// Pico-units in one unit.
const SCALE: i128 = 1_000_000_000_000;

/// The largest magnitude [`Amount::from_f64`] accepts (10²⁴ units): beyond it `f64` has no
/// integer precision left at this scale, and sums could overflow.
const MAX_UNITS: f64 = 1e24;

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// The amount `picos` pico-units (10⁻¹² of the unit).
    #[must_use]
    pub const fn from_picos(picos: i128) -> Amount {
        Amount(picos)
    }

    /// This amount in pico-units (10⁻¹² of the unit): exact.
    #[must_use]
    pub const fn picos(self) -> i128 {
        self.0
    }

    /// The decimal `value` stands for (its shortest round-trip form, so `0.1` is exactly one
    /// tenth), rounded half away from zero to twelve places; `None` for NaN, infinities and
    /// magnitudes over 10²⁴.
    #[must_use]
    pub fn from_f64(value: f64) -> Option<Amount> {
        if !value.is_finite() || value.abs() > MAX_UNITS {
            return None;
        }
        // Rust prints an f64 as the shortest decimal that reads back as the same f64, and
        // never in exponent form: the decimal the value was written as.
        Amount::parse_decimal(&value.to_string())
    }

    /// Reads a plain decimal (`-12.5`, `0.000001`), rounding half away from zero to twelve places.
    fn parse_decimal(text: &str) -> Option<Amount> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let mut picos: i128 = 0;
        for c in whole.chars() {
            picos = picos
                .checked_mul(10)?
                .checked_add(i128::from(c.to_digit(10)?))?;
        }
        let mut fraction_digits = fraction.chars();
        for _ in 0..12 {
            let digit = match fraction_digits.next() {
                Some(c) => c.to_digit(10)?,
                None => 0,
            };
            picos = picos.checked_mul(10)?.checked_add(i128::from(digit))?;
        }
        if fraction_digits
            .next()
            .and_then(|c| c.to_digit(10))
            .is_some_and(|d| d >= 5)
        {
            picos += 1;
        }
        Some(Amount(if negative { -picos } else { picos }))
    }

    /// The nearest `f64` (for display and JSON; sums are kept exact).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // an f64 view is what is asked for
    pub fn as_f64(self) -> f64 {
        let whole = self.0 / SCALE;
        let fraction = self.0 % SCALE;
        whole as f64 + fraction as f64 / SCALE as f64
    }

    /// Whether this amount is below zero.
    #[must_use]
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + other`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;

    /// Saturates instead of overflowing (far beyond any real cost).
    fn add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl std::ops::AddAssign for Amount {
    fn add_assign(&mut self, other: Amount) {
        *self = *self + other;
    }
}

impl std::ops::Sub for Amount {
    type Output = Amount;

    /// Saturates instead of overflowing (far beyond any real cost).
    fn sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }
}

impl std::ops::SubAssign for Amount {
    fn sub_assign(&mut self, other: Amount) {
        *self = *self - other;
    }
}

impl std::iter::Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Amount {
    /// The exact decimal, without trailing zeros: `12.5`, `0.000001`, `-3`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let scale = SCALE.unsigned_abs();
        let whole = magnitude / scale;
        let fraction = magnitude % scale;
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:012}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % SCALE == 0 {
            if let Ok(whole) = i64::try_from(self.0 / SCALE) {
                return serializer.serialize_i64(whole);
            }
        }
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Amount::from_f64(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{value} is not an amount (finite, at most 1e24 in magnitude)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_fractions_are_exact() {
        let tenth = Amount::from_f64(0.1).unwrap();
        let sum: Amount = std::iter::repeat_n(tenth, 10).sum();
        assert_eq!(sum, Amount::from_f64(1.0).unwrap());
        assert_eq!(sum.to_string(), "1");
        assert_eq!(Amount::from_f64(-2.5).unwrap().to_string(), "-2.5");
        assert_eq!(Amount::from_f64(0.000_001).unwrap().picos(), 1_000_000);
        assert_eq!(
            Amount::from_f64(1_234.567_891).unwrap().to_string(),
            "1234.567891"
        );
    }

    #[test]
    fn large_amounts_keep_their_decimals() {
        let a = Amount::from_f64(9_876.543_21).unwrap();
        assert_eq!(a.picos(), 9_876_543_210_000_000);
        assert_eq!(Amount::from_f64(1e-7).unwrap().picos(), 100_000);
        assert_eq!(Amount::from_f64(1e-13).unwrap(), Amount::ZERO);
        assert_eq!(Amount::from_f64(6e-13).unwrap().picos(), 1);
        assert_eq!(
            Amount::from_f64(1e24).unwrap().to_string(),
            "1000000000000000000000000"
        );
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        assert_eq!(Amount::from_f64(f64::NAN), None);
        assert_eq!(Amount::from_f64(f64::INFINITY), None);
        assert_eq!(Amount::from_f64(1e25), None);
        assert!(Amount::from_f64(1e24).is_some());
    }

    #[test]
    fn json_is_a_plain_number() {
        let a = Amount::from_f64(12.25).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "12.25");
        assert_eq!(
            serde_json::to_string(&Amount::from_f64(3.0).unwrap()).unwrap(),
            "3"
        );
        let back: Amount = serde_json::from_str("12.25").unwrap();
        assert_eq!(back, a);
        assert!((a.as_f64() - 12.25).abs() < f64::EPSILON);
    }
}
