//! Call history: `HomeDomain/Library/CallHistoryDB/CallHistory.storedata` (Core Data, table
//! `ZCALLRECORD`, `ZDATE` in Cocoa seconds).

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::contacts::Contacts;
use super::{Ctx, to_cocoa};
use crate::rng;

/// One `ZCALLRECORD` row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Z_PK.
    pub pk: i64,
    /// Start, Unix seconds.
    pub date: i64,
    /// Duration in seconds (0 when missed).
    pub duration: f64,
    /// The other party's number.
    pub address: String,
    /// Contact name if known.
    pub name: Option<String>,
    /// 1 outgoing, 0 incoming.
    pub originated: i64,
    /// 1 answered.
    pub answered: i64,
    /// 1 phone, 8 FaceTime video, 16 FaceTime audio, 0 third-party app.
    pub call_type: i64,
    /// e.g. `com.apple.Telephony`, `com.apple.FaceTime`, `net.whatsapp.WhatsApp`.
    pub service_provider: String,
    /// Unique id (UUID).
    pub unique_id: String,
}

/// The call history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calls {
    /// Calls in Z_PK order.
    pub calls: Vec<Call>,
}

impl Calls {
    pub(crate) fn generate(ctx: &Ctx, count: u32, contacts: &Contacts) -> Self {
        let with_phone: Vec<_> = contacts
            .people
            .iter()
            .filter(|p| !p.phones.is_empty())
            .collect();
        let calls = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "call", u64::from(i));
                let (address, name) = if !with_phone.is_empty() && r.gen_bool(0.8) {
                    let p = with_phone[r.gen_range(0..with_phone.len())];
                    let num = p.phones.first().map(|x| x.1.clone()).unwrap_or_default();
                    let digits: String = num.chars().filter(|c| c.is_ascii_digit()).collect();
                    (
                        format!("+{digits}"),
                        Some(format!("{} {}", p.first, p.last)),
                    )
                } else {
                    (format!("+1555{:07}", r.gen_range(0..10_000_000)), None)
                };
                let (call_type, provider) = match r.gen_range(0..10) {
                    0 => (8, "com.apple.FaceTime"),
                    1 => (16, "com.apple.FaceTime"),
                    2 => (0, "net.whatsapp.WhatsApp"),
                    _ => (1, "com.apple.Telephony"),
                };
                let answered = i64::from(r.gen_bool(0.8));
                Call {
                    pk: i64::from(i) + 1,
                    date: ctx.timeline("call-date", i, ctx.base.calls, 365),
                    duration: if answered == 1 {
                        f64::from(r.gen_range(5..3600))
                    } else {
                        0.0
                    },
                    address,
                    name,
                    originated: i64::from(r.gen_bool(0.5)),
                    answered,
                    call_type,
                    service_provider: provider.into(),
                    unique_id: rng::uuid(rng::key(ctx.seed, "call-uuid", u64::from(i))),
                }
            })
            .collect();
        Calls { calls }
    }

    /// Unix time of the newest call.
    pub fn last_change(&self) -> i64 {
        self.calls.iter().map(|c| c.date).max().unwrap_or(0)
    }

    pub(crate) fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE ZCALLRECORD (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZANSWERED INTEGER,
                ZCALL_CATEGORY INTEGER, ZCALLTYPE INTEGER, ZDISCONNECTED_CAUSE INTEGER, ZFACE_TIME_DATA BLOB,
                ZHANDLE_TYPE INTEGER, ZNUMBER_AVAILABILITY INTEGER, ZORIGINATED INTEGER, ZREAD INTEGER,
                ZJUNKCONFIDENCE INTEGER, ZDATE TIMESTAMP, ZDURATION FLOAT, ZADDRESS VARCHAR, ZDEVICE_ID VARCHAR,
                ZISO_COUNTRY_CODE VARCHAR, ZLOCATION VARCHAR, ZNAME VARCHAR, ZSERVICE_PROVIDER VARCHAR,
                ZUNIQUE_ID VARCHAR);
             CREATE INDEX ZCALLRECORD_ZDATE_INDEX ON ZCALLRECORD (ZDATE);",
        )?;
        crate::db::core_data_tables(
            c,
            &[(2, "CallRecord", self.calls.len() as i64)],
            "5B8A3C1E-0C47-4E52-9B0F-2D7A1C0E4F11",
        )?;
        for k in &self.calls {
            c.execute(
                "INSERT INTO ZCALLRECORD (Z_PK, Z_ENT, Z_OPT, ZANSWERED, ZCALL_CATEGORY, ZCALLTYPE, ZDISCONNECTED_CAUSE,
                 ZHANDLE_TYPE, ZNUMBER_AVAILABILITY, ZORIGINATED, ZREAD, ZDATE, ZDURATION, ZADDRESS, ZISO_COUNTRY_CODE,
                 ZLOCATION, ZNAME, ZSERVICE_PROVIDER, ZUNIQUE_ID)
                 VALUES (?1, 2, 1, ?2, 1, ?3, ?4, 2, 0, ?5, 1, ?6, ?7, ?8, 'us', 'United States', ?9, ?10, ?11)",
                params![
                    k.pk,
                    k.answered,
                    k.call_type,
                    if k.answered == 1 { 0 } else { 6 },
                    k.originated,
                    to_cocoa(k.date) as f64,
                    k.duration,
                    k.address,
                    k.name,
                    k.service_provider,
                    k.unique_id,
                ],
            )?;
        }
        Ok(())
    }
}
