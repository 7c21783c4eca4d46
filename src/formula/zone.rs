//! IANA time zones as chrono time zones, from the tz database bundled in the binary (jiff's).
//!
//! [`Zone`] implements [`chrono::TimeZone`], so `date.with_timezone(&zone)`,
//! `zone.from_local_datetime(..)` and `%Z` in a format work as with any chrono zone. The
//! database is jiff's bundled copy, not the host's `/usr/share/zoneinfo`: the same answers on
//! every machine (and in the sandbox), as before with chrono-tz.
//!
//! Why not chrono-tz: its zone tables are Rust statics full of pointers, 1 MB of relocated data
//! that the loader writes at every start of the binary (a quarter of the page faults of a cold
//! start). jiff's database is plain bytes, read only for the zones a process uses.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone};
use jiff::tz::{AmbiguousOffset, TimeZoneDatabase};

/// The bundled tz database (its zones are parsed once per process and cached).
static DATABASE: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// An IANA time zone ("Europe/Paris", "UTC"), or UTC itself.
#[derive(Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
}

/// The name is not a time zone of the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}")]
pub struct UnknownZone(pub String);

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone {
        tz: jiff::tz::TimeZone::UTC,
    };

    /// Its IANA name ("UTC" for UTC).
    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// The offset and abbreviation in force at the UTC instant `utc`.
    fn at(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let ts = utc.and_utc();
        let info = jiff::Timestamp::new(ts.timestamp(), 0)
            .map(|t| self.tz.to_offset_info(t))
            .ok();
        let (seconds, abbreviation) = match &info {
            Some(i) => (i.offset().seconds(), Abbreviation::new(i.abbreviation())),
            None => (0, Abbreviation::new("UTC")),
        };
        ZoneOffset {
            zone: self.clone(),
            fixed: FixedOffset::east_opt(seconds).unwrap_or_else(|| chrono::Utc.fix()),
            abbreviation,
        }
    }

    /// The offset of an unambiguous offset value, with the abbreviation of the instant.
    fn local(&self, local: &NaiveDateTime, seconds: i32) -> Option<ZoneOffset> {
        let fixed = FixedOffset::east_opt(seconds)?;
        let utc = local.checked_sub_offset(fixed)?;
        let mut offset = self.at(&utc);
        // The instant's own offset is the one asked for (they agree; keep the asked one).
        offset.fixed = fixed;
        Some(offset)
    }
}

impl FromStr for Zone {
    type Err = UnknownZone;

    /// An IANA name, as the tz database spells it or in another case ("europe/paris").
    fn from_str(name: &str) -> Result<Zone, UnknownZone> {
        match DATABASE.get(name) {
            Ok(tz) => Ok(Zone { tz }),
            Err(_) => Err(UnknownZone(name.to_owned())),
        }
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A time-zone abbreviation ("CET", "EDT", "+03"), kept inline (the database's are at most 6
/// bytes; longer ones are cut at a character boundary).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Abbreviation {
    len: u8,
    bytes: [u8; 15],
}

impl Abbreviation {
    fn new(s: &str) -> Abbreviation {
        let mut len = s.len().min(15);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0u8; 15];
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), s.as_bytes().get(..len)) {
            dst.copy_from_slice(src);
        }
        Abbreviation {
            len: len as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// The offset of a [`Zone`] at an instant: the fixed offset and the zone's abbreviation for it
/// (what `%Z` prints).
#[derive(Clone)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
    abbreviation: Abbreviation,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.abbreviation.as_str(), self.fixed)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation.as_str())
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(midnight) => self.offset_from_local_datetime(&midnight),
            None => MappedLocalTime::None,
        }
    }

    /// One offset, two around a fold (the clock set back: earlier first), none in a gap (the
    /// clock set forward), as chrono's own zones answer.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        let Some(civil) = civil(local) else {
            return MappedLocalTime::None;
        };
        let found = match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => self
                .local(local, offset.seconds())
                .map(MappedLocalTime::Single),
            AmbiguousOffset::Fold { before, after } => {
                match (
                    self.local(local, before.seconds()),
                    self.local(local, after.seconds()),
                ) {
                    (Some(a), Some(b)) => Some(MappedLocalTime::Ambiguous(a, b)),
                    _ => None,
                }
            }
            AmbiguousOffset::Gap { .. } => None,
        };
        found.unwrap_or(MappedLocalTime::None)
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.at(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.at(utc)
    }
}

/// A chrono local date-time as jiff's (`None` outside jiff's years -9999..=9999).
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        i8::try_from(local.month()).ok()?,
        i8::try_from(local.day()).ok()?,
        i8::try_from(local.hour()).ok()?,
        i8::try_from(local.minute()).ok()?,
        i8::try_from(local.second().min(59)).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn names_parse_in_any_case_and_unknown_names_do_not() {
        assert_eq!(
            "Europe/Paris".parse::<Zone>().unwrap().name(),
            "Europe/Paris"
        );
        assert_eq!(
            "europe/paris".parse::<Zone>().unwrap().name(),
            "Europe/Paris"
        );
        assert_eq!(
            "UTC".parse::<Zone>().unwrap(),
            "utc".parse::<Zone>().unwrap()
        );
        assert!(
            "US/Eastern".parse::<Zone>().is_ok(),
            "backward links are names too"
        );
        for bad in ["", "Mars/Olympus", "Europe/Paris ", "+02:00", "CET-1CEST"] {
            assert_eq!(
                bad.parse::<Zone>(),
                Err(UnknownZone(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(Zone::UTC.name(), "UTC");
    }

    #[test]
    fn utc_instants_take_the_offset_and_abbreviation_in_force() {
        let paris: Zone = "Europe/Paris".parse().unwrap();
        let winter = utc("2024-01-15T12:00:00Z").with_timezone(&paris);
        assert_eq!(
            winter.format("%Y-%m-%d %H:%M %Z %z").to_string(),
            "2024-01-15 13:00 CET +0100"
        );
        let summer = utc("2024-07-15T12:00:00Z").with_timezone(&paris);
        assert_eq!(summer.format("%H:%M %Z").to_string(), "14:00 CEST");
        let kolkata: Zone = "Asia/Kolkata".parse().unwrap();
        let t = utc("2024-07-15T12:00:00Z").with_timezone(&kolkata);
        assert_eq!(t.format("%H:%M %z").to_string(), "17:30 +0530");
        let ny: Zone = "America/New_York".parse().unwrap();
        assert_eq!(
            utc("2024-03-10T07:30:00Z")
                .with_timezone(&ny)
                .format("%H:%M %Z")
                .to_string(),
            "03:30 EDT"
        );
        assert_eq!(
            utc("2024-03-10T06:30:00Z")
                .with_timezone(&ny)
                .format("%H:%M %Z")
                .to_string(),
            "01:30 EST"
        );
        let utc_zone = utc("2024-07-15T12:00:00Z").with_timezone(&Zone::UTC);
        assert_eq!(utc_zone.format("%H:%M %Z").to_string(), "12:00 UTC");
    }

    #[test]
    fn local_times_map_to_one_two_or_no_instants() {
        let ny: Zone = "America/New_York".parse().unwrap();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // Plain.
        let one = ny
            .from_local_datetime(&at("2024-07-01 09:00"))
            .single()
            .unwrap();
        assert_eq!(one.with_timezone(&Utc), utc("2024-07-01T13:00:00Z"));
        // The clock set forward: 02:30 does not exist.
        assert!(matches!(
            ny.from_local_datetime(&at("2024-03-10 02:30")),
            MappedLocalTime::None
        ));
        // The clock set back: 01:30 happens twice, EDT first.
        match ny.from_local_datetime(&at("2024-11-03 01:30")) {
            MappedLocalTime::Ambiguous(a, b) => {
                assert_eq!(a.with_timezone(&Utc), utc("2024-11-03T05:30:00Z"));
                assert_eq!(b.with_timezone(&Utc), utc("2024-11-03T06:30:00Z"));
                assert_eq!(a.format("%Z").to_string(), "EDT");
                assert_eq!(b.format("%Z").to_string(), "EST");
            }
            other => panic!("{other:?}"),
        }
        // earliest() as the callers use it.
        let e = ny
            .from_local_datetime(&at("2024-11-03 01:30"))
            .earliest()
            .unwrap();
        assert_eq!(e.with_timezone(&Utc), utc("2024-11-03T05:30:00Z"));
        // A date's midnight, and a year jiff does not hold.
        let d = NaiveDate::from_ymd_opt(2024, 7, 1).unwrap();
        assert_eq!(
            ny.offset_from_local_date(&d)
                .single()
                .unwrap()
                .fix()
                .local_minus_utc(),
            -4 * 3600
        );
        let far = NaiveDate::from_ymd_opt(20_000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert!(matches!(
            ny.from_local_datetime(&far),
            MappedLocalTime::None
        ));
    }

    /// Against chrono-tz (another implementation, with its own copy of the database): the same
    /// offsets, abbreviations and local-time answers for widely used zones over 2000-2025.
    #[test]
    fn zones_agree_with_chrono_tz() {
        let names = [
            "Europe/Paris",
            "Europe/London",
            "Europe/Moscow",
            "America/New_York",
            "America/Los_Angeles",
            "America/Sao_Paulo",
            "America/St_Johns",
            "Asia/Kolkata",
            "Asia/Tokyo",
            "Asia/Kathmandu",
            "Australia/Sydney",
            "Australia/Lord_Howe",
            "Pacific/Auckland",
            "Pacific/Chatham",
            "Africa/Cairo",
            "UTC",
        ];
        for name in names {
            let ours: Zone = name.parse().unwrap();
            let theirs: chrono_tz::Tz = name.parse().unwrap();
            // Every 7 days and 5 hours from 2000 to 2025: all seasons, most hours.
            let mut t = utc("2000-01-01T00:30:00Z");
            while t < utc("2025-12-31T00:00:00Z") {
                let a = t.with_timezone(&ours);
                let b = t.with_timezone(&theirs);
                assert_eq!(
                    a.format("%F %T %Z %z").to_string(),
                    b.format("%F %T %Z %z").to_string(),
                    "{name} at {t}"
                );
                let local = b.naive_local();
                let ea = ours
                    .from_local_datetime(&local)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc));
                let eb = theirs
                    .from_local_datetime(&local)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc));
                assert_eq!(ea, eb, "{name} local {local}");
                t += chrono::Duration::hours(7 * 24 + 5);
            }
        }
    }

    #[test]
    fn abbreviations_are_kept_whole_or_cut_at_a_character() {
        assert_eq!(Abbreviation::new("CEST").as_str(), "CEST");
        assert_eq!(Abbreviation::new("").as_str(), "");
        assert_eq!(Abbreviation::new(&"é".repeat(10)).as_str(), "é".repeat(7));
    }
}
