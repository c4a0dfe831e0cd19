//! Contacts export: `contacts.vcf` (vCard 3.0, what iOS and Google import most reliably, or
//! 4.0) with embedded photos, or `contacts.csv`.

use std::io::Write;

use base64::Engine as _;

use super::text::{csv_row, fold, vtext};
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::contacts::{ContactsDb, Labeled, Person};
use crate::error::{IoContext, Result};

/// vCard version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcardVersion {
    /// RFC 2426.
    V3,
    /// RFC 6350.
    V4,
}

fn image_type(b: &[u8]) -> (&'static str, &'static str) {
    if b.starts_with(b"\x89PNG") {
        ("PNG", "image/png")
    } else if b.starts_with(b"GIF8") {
        ("GIF", "image/gif")
    } else {
        ("JPEG", "image/jpeg")
    }
}

/// A birthday as iOS stores it (Cocoa seconds, as text or number) → `YYYY-MM-DD`.
fn birthday(s: &str) -> Option<String> {
    let secs: f64 = s.trim().parse().ok().filter(|f: &f64| f.is_finite())?;
    if secs.abs() > 1e11 {
        return None;
    }
    let unix = (secs.floor() as i64).checked_add(crate::time::COCOA_EPOCH)?;
    chrono::DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y-%m-%d").to_string())
}

/// vCard `TYPE` for an iOS label, or `None` for a custom label (written as `X-ABLabel`).
fn vcard_type(kind: &str, label: Option<&str>, v: VcardVersion) -> Option<String> {
    let l = label?.to_ascii_lowercase();
    let t = match (kind, l.as_str()) {
        ("TEL", "mobile" | "iphone") => "CELL",
        ("TEL", "main") => "VOICE",
        ("TEL", "home fax") => "HOME,FAX",
        ("TEL", "work fax") => "WORK,FAX",
        ("TEL", "pager") => "PAGER",
        (_, "home") => "HOME",
        (_, "work") => "WORK",
        (_, "other") => "OTHER",
        _ => return None,
    };
    Some(match v {
        VcardVersion::V3 => t.to_string(),
        VcardVersion::V4 => t.to_ascii_lowercase(),
    })
}

/// One person as a vCard (CRLF lines, folded at 75 octets).
pub fn vcard(p: &Person, v: VcardVersion) -> String {
    let mut s = String::with_capacity(512);
    let mut line = |l: String| s.push_str(&fold(&l));
    line("BEGIN:VCARD".into());
    line(match v {
        VcardVersion::V3 => "VERSION:3.0".into(),
        VcardVersion::V4 => "VERSION:4.0".into(),
    });
    let t = |x: &Option<String>| vtext(x.as_deref().unwrap_or(""));
    line(format!(
        "N:{};{};{};{};{}",
        t(&p.last),
        t(&p.first),
        t(&p.middle),
        t(&p.prefix),
        t(&p.suffix)
    ));
    line(format!("FN:{}", vtext(&p.display_name())));
    if let Some(n) = &p.nickname {
        line(format!("NICKNAME:{}", vtext(n)));
    }
    if p.organization.is_some() || p.department.is_some() {
        match &p.department {
            Some(d) => line(format!("ORG:{};{}", t(&p.organization), vtext(d))),
            None => line(format!("ORG:{}", t(&p.organization))),
        }
    }
    if let Some(j) = &p.job_title {
        line(format!("TITLE:{}", vtext(j)));
    }
    let mut item = 0;
    let mut values = |kind: &str, list: &[Labeled], extra3: &str, line: &mut dyn FnMut(String)| {
        for lv in list {
            match vcard_type(kind, lv.label.as_deref(), v) {
                Some(ty) => {
                    let ty = if v == VcardVersion::V3 && !extra3.is_empty() {
                        format!("{extra3},{ty}")
                    } else {
                        ty
                    };
                    line(format!("{kind};TYPE={ty}:{}", vtext(&lv.value)));
                }
                None => {
                    item += 1;
                    match (v, extra3.is_empty()) {
                        (VcardVersion::V3, false) => line(format!(
                            "item{item}.{kind};TYPE={extra3}:{}",
                            vtext(&lv.value)
                        )),
                        _ => line(format!("item{item}.{kind}:{}", vtext(&lv.value))),
                    }
                    if let Some(l) = &lv.label {
                        line(format!("item{item}.X-ABLabel:{}", vtext(l)));
                    }
                }
            }
        }
    };
    values("TEL", &p.phones, "", &mut line);
    values("EMAIL", &p.emails, "INTERNET", &mut line);
    values("URL", &p.urls, "", &mut line);
    if let Some(b) = p.birthday.as_deref().and_then(birthday) {
        line(format!("BDAY:{b}"));
    }
    if let Some(n) = &p.note {
        line(format!("NOTE:{}", vtext(n)));
    }
    if let Some(photo) = &p.photo {
        let b64 = base64::engine::general_purpose::STANDARD.encode(photo);
        let (ty, mime) = image_type(photo);
        line(match v {
            VcardVersion::V3 => format!("PHOTO;ENCODING=b;TYPE={ty}:{b64}"),
            VcardVersion::V4 => format!("PHOTO:data:{mime};base64,{b64}"),
        });
    }
    if let Some(m) = p.modified {
        let rev = chrono::DateTime::from_timestamp(m, 0)
            .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default();
        if !rev.is_empty() {
            line(format!("REV:{rev}"));
        }
    }
    line("END:VCARD".into());
    s
}

fn joined(list: &[Labeled]) -> String {
    list.iter()
        .map(|l| match &l.label {
            Some(lb) => format!("{lb}: {}", l.value),
            None => l.value.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

const CSV_HEADER: [&str; 16] = [
    "id",
    "first",
    "middle",
    "last",
    "nickname",
    "organization",
    "department",
    "job_title",
    "phones",
    "emails",
    "urls",
    "birthday",
    "note",
    "created",
    "modified",
    "has_photo",
];

fn csv(p: &Person) -> String {
    let s = |x: &Option<String>| x.clone().unwrap_or_default();
    let d = |x: Option<i64>| x.map(crate::time::rfc3339).unwrap_or_default();
    csv_row(&[
        p.rowid.to_string(),
        s(&p.first),
        s(&p.middle),
        s(&p.last),
        s(&p.nickname),
        s(&p.organization),
        s(&p.department),
        s(&p.job_title),
        joined(&p.phones),
        joined(&p.emails),
        joined(&p.urls),
        p.birthday.as_deref().and_then(birthday).unwrap_or_default(),
        s(&p.note),
        d(p.created),
        d(p.modified),
        u8::from(p.photo.is_some()).to_string(),
    ])
}

/// Writes `contacts.vcf` (fmt `vcf` = 3.0, `vcf4` = 4.0) or `contacts.csv`.
pub(crate) fn export(
    db: &ContactsDb,
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let name = if fmt == "csv" {
        "contacts.csv"
    } else {
        "contacts.vcf"
    };
    let (path, mut w) = out.file(name)?;
    if fmt == "csv" {
        w.write_all(csv_row(&CSV_HEADER).as_bytes()).at(&path)?;
    }
    for p in db.people() {
        let p = p?;
        let s = match fmt {
            "csv" => csv(&p),
            "vcf4" => vcard(&p, VcardVersion::V4),
            _ => vcard(&p, VcardVersion::V3),
        };
        w.write_all(s.as_bytes()).at(&path)?;
        report.records += 1;
        if report.records.is_multiple_of(500) {
            progress(report.records, total);
        }
    }
    finish(&path, w)?;
    report.files_written = 1;
    progress(report.records, total);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_and_types() {
        assert_eq!(birthday("0").as_deref(), Some("2001-01-01"));
        assert_eq!(birthday("nope"), None);
        assert_eq!(birthday("1e300"), None);
        assert_eq!(
            vcard_type("TEL", Some("Mobile"), VcardVersion::V3).as_deref(),
            Some("CELL")
        );
        assert_eq!(vcard_type("TEL", Some("Boat"), VcardVersion::V3), None);
    }
}
