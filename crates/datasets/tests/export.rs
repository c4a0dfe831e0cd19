//! Exports of a synthetic phone's backup, checked record by record against the phone's typed
//! records, for two iOS schema generations (15.7 plain, 17.5 encrypted).
#![allow(clippy::unwrap_used)] // tests may panic

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iosnap_datasets::export::{Dataset, ExportReport, export};
use iosnap_format::keybag::KdfParams;
use iosnap_format::writer::{BackupWriter, DeviceInfo, Encryption, WriterOptions};
use iosnap_format::{Backup, EntryKind};
use iosnap_phone::datasets::Levels;
use iosnap_phone::datasets::notes::NotesGeneration;
use iosnap_phone::{Phone, PhoneSpec};

const PASSWORD: &[u8] = b"test-password";

struct Fixture {
    _tmp: tempfile::TempDir,
    phone: Phone,
    dir: PathBuf,
    encrypted: bool,
}

fn fixture(version: &str, encrypted: bool) -> Fixture {
    fixture_with(version, encrypted, false)
}

/// `legacy_notes`: the notes are written as the iOS ≤ 8 `HomeDomain/Library/Notes/notes.sqlite`
/// (same records) instead of NoteStore.sqlite.
fn fixture_with(version: &str, encrypted: bool, legacy_notes: bool) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let spec = PhoneSpec {
        product_version: version.into(),
        files: 5,
        bytes: 1 << 14,
        apps: 4,
        data: Levels {
            messages: 2300,
            contacts: 120,
            ..Levels::default()
        },
        ..PhoneSpec::default()
    };
    let phone = Phone::generate_in(&spec, &tmp.path().join("cache")).unwrap();
    let dir = tmp.path().join("backup");
    let opts = WriterOptions {
        encryption: encrypted.then(|| {
            Encryption::new(
                PASSWORD,
                KdfParams {
                    dpic: 1000,
                    iter: 100,
                },
            )
        }),
        device: DeviceInfo {
            product_version: version.into(),
            ..DeviceInfo::default()
        },
        installed_applications: phone.apps().iter().map(|a| a.bundle_id.clone()).collect(),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(&dir, opts).unwrap();
    let (notes_domain, notes_path) = NotesGeneration::NoteStore.location();
    if legacy_notes {
        let file = tmp.path().join("legacy/notes.sqlite");
        phone.datasets().notes.build_legacy(&file).unwrap();
        let (d, p) = NotesGeneration::Legacy.location();
        let meta = phone
            .files()
            .find(|f| f.domain == notes_domain && f.relative_path == notes_path)
            .unwrap()
            .meta
            .clone();
        w.add_file(d, p, meta, std::fs::File::open(&file).unwrap())
            .unwrap();
    }
    for f in phone.files() {
        if legacy_notes && f.domain == notes_domain && f.relative_path == notes_path {
            continue;
        }
        match f.kind {
            EntryKind::Directory => {
                w.add_directory(&f.domain, &f.relative_path, f.meta.clone())
                    .unwrap();
            }
            EntryKind::Symlink => {
                let t = f.meta.target.clone().unwrap_or_default();
                w.add_symlink(&f.domain, &f.relative_path, &t, f.meta.clone())
                    .unwrap();
            }
            EntryKind::File => {
                w.add_file(
                    &f.domain,
                    &f.relative_path,
                    f.meta.clone(),
                    phone.open(f).unwrap(),
                )
                .unwrap();
            }
            EntryKind::Other(_) => {}
        }
    }
    w.finish().unwrap();
    Fixture {
        _tmp: tmp,
        phone,
        dir,
        encrypted,
    }
}

impl Fixture {
    fn backup(&self) -> Backup {
        let mut b = Backup::open(&self.dir).unwrap();
        if self.encrypted {
            b.unlock(PASSWORD).unwrap();
        }
        b
    }

    fn export(&self, d: Dataset, fmt: &str) -> (PathBuf, ExportReport) {
        let out = self._tmp.path().join(format!("out-{}-{fmt}", d.name()));
        let mut calls = 0;
        let r = export(&self.backup(), d, Some(fmt), &out, &mut |_, _| calls += 1).unwrap();
        assert!(calls >= 2, "progress is reported");
        (out, r)
    }
}

fn rfc(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Contact names by phone (last 10 digits) / e-mail, first person wins: computed here
/// independently of the crate's own index.
fn names(phone: &Phone) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for p in &phone.datasets().contacts.people {
        let name = format!("{} {}", p.first, p.last);
        for (_, num) in &p.phones {
            let d: String = num.chars().filter(char::is_ascii_digit).collect();
            m.entry(d[d.len().saturating_sub(10)..].to_string())
                .or_insert_with(|| name.clone());
        }
        for (_, e) in &p.emails {
            m.entry(e.to_lowercase()).or_insert_with(|| name.clone());
        }
    }
    m
}

fn name_for(names: &HashMap<String, String>, addr: &str) -> Option<String> {
    if addr.contains('@') {
        return names.get(&addr.to_lowercase()).cloned();
    }
    let d: String = addr.chars().filter(char::is_ascii_digit).collect();
    names.get(&d[d.len().saturating_sub(10)..]).cloned()
}

/// Every file under `root` (relative paths).
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            assert!(!t.is_symlink(), "no symlinks in an export");
            if t.is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    v
}

fn check_messages_json(f: &Fixture) {
    let ds = f.phone.datasets();
    let (out, report) = f.export(Dataset::Messages, "json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("messages.json")).unwrap()).unwrap();
    let names = names(&f.phone);
    let handles: HashMap<i64, &str> = ds
        .messages
        .handles
        .iter()
        .map(|h| (h.rowid, h.id.as_str()))
        .collect();
    let mut by_guid: HashMap<String, (i64, serde_json::Value)> = HashMap::new();
    let convs = v["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), ds.messages.chats.len());
    for c in convs {
        let chat_id = c["chat_id"].as_i64().unwrap();
        let chat = ds
            .messages
            .chats
            .iter()
            .find(|x| x.rowid == chat_id)
            .unwrap();
        let addrs: Vec<&str> = c["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["address"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = chat.handles.iter().map(|h| handles[h]).collect();
        assert_eq!(addrs, want);
        if let Some(dn) = &chat.display_name {
            assert_eq!(c["name"].as_str().unwrap(), dn);
            assert_eq!(c["is_group"], true);
        }
        for m in c["messages"].as_array().unwrap() {
            by_guid.insert(
                m["guid"].as_str().unwrap().to_string(),
                (chat_id, m.clone()),
            );
        }
    }
    assert_eq!(by_guid.len(), ds.messages.messages.len());
    assert_eq!(report.records as usize, ds.messages.messages.len());
    let mut copied = 0;
    for m in &ds.messages.messages {
        let (chat_id, o) = &by_guid[&m.guid];
        assert_eq!(*chat_id, m.chat_id, "chat of {}", m.guid);
        assert_eq!(
            o["text"].as_str(),
            Some(m.text.as_str()),
            "text of {}",
            m.guid
        );
        assert_eq!(o["date"].as_str().unwrap(), rfc(m.date));
        assert_eq!(o["is_from_me"].as_bool().unwrap(), m.is_from_me);
        assert_eq!(o["service"].as_str().unwrap(), m.service);
        if m.is_from_me {
            assert_eq!(o["sender_name"], "Me");
        } else {
            let addr = handles[&m.handle_id];
            assert_eq!(o["sender"].as_str().unwrap(), addr);
            let want = name_for(&names, addr).unwrap_or_else(|| addr.to_string());
            assert_eq!(o["sender_name"].as_str().unwrap(), want);
        }
        match &m.tapback {
            Some((kind, target)) => {
                assert_eq!(o["tapback"]["kind"].as_i64().unwrap(), *kind);
                assert_eq!(
                    o["tapback"]["target_guid"].as_str().unwrap(),
                    target.trim_start_matches("p:0/")
                );
                assert_eq!(o["tapback"]["target_part"].as_i64(), Some(0));
            }
            None => assert!(o["tapback"].is_null()),
        }
        assert_eq!(o["reply_to"].as_str(), m.thread_originator_guid.as_deref());
        let edited = (m.date_edited > 0).then(|| rfc(m.date_edited));
        assert_eq!(o["edited"].as_str(), edited.as_deref());
        let atts = o["attachments"].as_array().unwrap();
        match m.attachment_id {
            Some(a) => {
                let a = ds
                    .messages
                    .attachments
                    .iter()
                    .find(|x| x.rowid == a)
                    .unwrap();
                assert_eq!(atts.len(), 1);
                assert_eq!(atts[0]["status"], "copied");
                assert_eq!(atts[0]["name"].as_str().unwrap(), a.transfer_name);
                let rel = atts[0]["path"].as_str().unwrap();
                let got = std::fs::read(out.join(rel)).unwrap();
                let pf = f
                    .phone
                    .find("MediaDomain", a.filename.trim_start_matches("~/"))
                    .unwrap();
                assert_eq!(got, f.phone.read(pf).unwrap(), "attachment bytes");
                copied += 1;
            }
            None => assert!(atts.is_empty()),
        }
    }
    assert!(copied > 0);
    assert_eq!(
        report.attachments_copied as usize,
        ds.messages.attachments.len()
    );
    assert_eq!(report.attachments_missing + report.attachments_unsafe, 0);
    let files = files_under(&out);
    assert_eq!(files.len() as u64, report.files_written);
}

fn check_messages_pages(f: &Fixture) {
    let ds = f.phone.datasets();
    // HTML: one page per conversation + index, every body escaped into its page.
    let (out, r) = f.export(Dataset::Messages, "html");
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(r.groups as usize, ds.messages.chats.len());
    let pages: Vec<PathBuf> = files_under(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html") && p != Path::new("index.html"))
        .collect();
    assert_eq!(pages.len(), ds.messages.chats.len());
    let mut all = String::new();
    for p in &pages {
        let href: String = p
            .to_string_lossy()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert!(index.contains(&href), "index links {href}");
        let s = std::fs::read_to_string(out.join(p)).unwrap();
        assert!(s.starts_with("<!DOCTYPE html>") && s.ends_with("</body></html>\n"));
        all.push_str(&s);
    }
    for m in ds.messages.messages.iter().filter(|m| m.tapback.is_none()) {
        let esc = m.text.replace('&', "&amp;").replace('\'', "&#39;");
        assert!(
            all.contains(&format!("id=\"m-{}\"><div class=\"who\">", m.guid)),
            "{}",
            m.guid
        );
        assert!(all.contains(&esc), "html body {}", m.text);
    }
    assert!(all.contains("<img src=\"attachments/"));
    // TXT: one file per conversation.
    let (out, _) = f.export(Dataset::Messages, "txt");
    let txts = files_under(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .count();
    assert_eq!(txts, ds.messages.chats.len());
    // CSV: one row per message with its text.
    let (out, _) = f.export(Dataset::Messages, "csv");
    let rows = parse_csv(&std::fs::read_to_string(out.join("messages.csv")).unwrap());
    assert_eq!(rows[0][9], "text");
    assert_eq!(rows.len() - 1, ds.messages.messages.len());
    let by_guid: HashMap<&str, &Vec<String>> =
        rows[1..].iter().map(|r| (r[3].as_str(), r)).collect();
    for m in &ds.messages.messages {
        let r = by_guid[m.guid.as_str()];
        assert_eq!(r[9], m.text);
        assert_eq!(r[4], rfc(m.date));
        assert_eq!(r[0], m.chat_id.to_string());
    }
}

/// A small RFC 4180 parser, independent of the exporter.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                c => field.push(c),
            }
        }
    }
    rows
}

fn check_contacts(f: &Fixture) {
    let ds = f.phone.datasets();
    for fmt in ["vcf", "vcf4"] {
        let (out, r) = f.export(Dataset::Contacts, fmt);
        assert_eq!(r.records as usize, ds.contacts.people.len());
        let cards = peers_vcard(&out.join("contacts.vcf"));
        let Some(cards) = cards else { continue };
        let cards = cards.as_array().unwrap();
        assert_eq!(cards.len(), ds.contacts.people.len());
        for (p, c) in ds.contacts.people.iter().zip(cards) {
            assert_eq!(c["fn"], format!("{} {}", p.first, p.last));
            assert_eq!(c["given"], p.first.as_str());
            assert_eq!(c["family"], p.last.as_str());
            let tels: Vec<&str> = p.phones.iter().map(|x| x.1.as_str()).collect();
            assert_eq!(c["tel"], serde_json::json!(tels));
            let mails: Vec<&str> = p.emails.iter().map(|x| x.1.as_str()).collect();
            assert_eq!(c["email"], serde_json::json!(mails));
            match &p.job_title {
                Some(t) => assert_eq!(c["title"], serde_json::json!([t])),
                None => assert_eq!(c["title"], serde_json::json!([])),
            }
            match &p.note {
                Some(n) => assert_eq!(c["note"], serde_json::json!([n])),
                None => assert_eq!(c["note"], serde_json::json!([])),
            }
            if fmt == "vcf" {
                match &p.organization {
                    Some(o) => assert_eq!(c["org"], serde_json::json!([[o]])),
                    None => assert_eq!(c["org"], serde_json::json!([])),
                }
            }
            if p.has_image {
                use base64::Engine as _;
                let want = ds.contacts.thumbnail(p.created as u64, p);
                let got = base64::engine::general_purpose::STANDARD
                    .decode(c["photo"].as_str().unwrap())
                    .unwrap();
                assert_eq!(got, want, "photo of {}", p.rowid);
            } else {
                assert!(c["photo"].is_null());
            }
        }
    }
    let (out, _) = f.export(Dataset::Contacts, "csv");
    let rows = parse_csv(&std::fs::read_to_string(out.join("contacts.csv")).unwrap());
    assert_eq!(rows.len() - 1, ds.contacts.people.len());
    for (p, r) in ds.contacts.people.iter().zip(&rows[1..]) {
        assert_eq!(r[0], p.rowid.to_string());
        assert_eq!(
            (r[1].as_str(), r[3].as_str()),
            (p.first.as_str(), p.last.as_str())
        );
        assert_eq!(r[13], rfc(p.created));
        assert_eq!(r[15], if p.has_image { "1" } else { "0" });
    }
}

/// Runs the vobject parser from the peers venv. `None` only when IOSNAP_SKIP_PEERS=1.
fn peers_vcard(path: &Path) -> Option<serde_json::Value> {
    peers_python("vcard_dump.py", &[path.to_path_buf()])
}

/// Runs a script of tests/peers with the peers venv's python. `None` only when
/// IOSNAP_SKIP_PEERS=1 and the venv is missing.
fn peers_python(script: &str, args: &[PathBuf]) -> Option<serde_json::Value> {
    let venv = std::env::var_os("IOSNAP_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv"));
    let python = venv.join("bin/python");
    if !python.exists() {
        if std::env::var("IOSNAP_SKIP_PEERS").as_deref() == Ok("1") {
            return None;
        }
        panic!(
            "the peers venv is missing ({}): run scripts/peers-venv.sh (it installs vobject and \
             icalendar), or set IOSNAP_SKIP_PEERS=1 to skip the independent vCard/iCalendar checks",
            python.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(script);
    let o = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} failed on {args:?}: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

fn check_calendar(f: &Fixture) {
    let cal = &f.phone.datasets().calendar;
    let (out, r) = f.export(Dataset::Calendar, "ics");
    assert_eq!(r.records as usize, cal.events.len());
    assert_eq!(r.skipped_count, 0);
    let files: Vec<PathBuf> = files_under(&out).into_iter().map(|p| out.join(p)).collect();
    assert_eq!(files.len(), cal.calendars.len());
    let Some(v) = peers_python("ics_dump.py", &files) else {
        return;
    };
    let mut seen = 0;
    for (rowid, title, _) in &cal.calendars {
        let path = out.join(format!("{title} ({rowid}).ics"));
        let c = &v[path.to_string_lossy().as_ref()];
        assert_eq!(c["name"], title.as_str());
        let events = c["events"].as_array().unwrap();
        let want: Vec<_> = cal
            .events
            .iter()
            .filter(|e| e.calendar_id == *rowid)
            .collect();
        assert_eq!(events.len(), want.len());
        for (e, o) in want.iter().zip(events) {
            seen += 1;
            assert_eq!(o["uid"], e.uuid.as_str());
            assert_eq!(o["summary"], e.summary.as_str());
            assert_eq!(o["location"].as_str(), e.location.as_deref());
            let dt = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap();
            if e.all_day {
                assert_eq!(o["dtstart"], dt(e.start).format("%Y-%m-%d").to_string());
                assert_eq!(o["dtend"], dt(e.end + 1).format("%Y-%m-%d").to_string());
            } else {
                assert_eq!(
                    o["dtstart"],
                    dt(e.start).format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
                );
                assert_eq!(
                    o["dtend"],
                    dt(e.end).format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
                );
            }
            let rrule = e.recurrence.as_ref().map(|r| {
                let freq = ["", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"][r.frequency as usize];
                let mut s = format!("FREQ={freq}");
                if r.interval > 1 {
                    s.push_str(&format!(";INTERVAL={}", r.interval));
                }
                if r.count > 0 {
                    s.push_str(&format!(";COUNT={}", r.count));
                }
                s
            });
            assert_eq!(
                o["rrule"].as_str(),
                rrule.as_deref(),
                "rrule of {}",
                e.rowid
            );
            let alarms: Vec<i64> = e.alarm.iter().map(|a| -a).collect();
            assert_eq!(o["alarms"], serde_json::json!(alarms));
        }
    }
    assert_eq!(seen, cal.events.len());
}

fn check_safari(f: &Fixture) {
    let sf = &f.phone.datasets().safari;
    let items: HashMap<i64, &iosnap_phone::datasets::safari::HistoryItem> =
        sf.items.iter().map(|i| (i.id, i)).collect();
    let (out, r) = f.export(Dataset::SafariHistory, "json");
    assert_eq!(r.records as usize, sf.visits.len());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), sf.visits.len());
    for (w, o) in sf.visits.iter().zip(arr) {
        let it = items[&w.item];
        assert_eq!(o["id"].as_i64().unwrap(), w.id);
        assert_eq!(o["time"].as_str().unwrap(), rfc(w.time));
        assert_eq!(o["url"].as_str().unwrap(), it.url);
        assert_eq!(o["title"].as_str().unwrap(), w.title);
        assert_eq!(o["domain"].as_str().unwrap(), it.domain_expansion);
        assert_eq!(o["visit_count"].as_i64().unwrap(), it.visit_count);
    }
    let (out, _) = f.export(Dataset::SafariHistory, "csv");
    let rows = parse_csv(&std::fs::read_to_string(out.join("history.csv")).unwrap());
    assert_eq!(rows.len() - 1, sf.visits.len());
    for (w, r) in sf.visits.iter().zip(&rows[1..]) {
        assert_eq!(
            (r[1].as_str(), r[3].as_str()),
            (rfc(w.time).as_str(), w.title.as_str())
        );
    }
    // Bookmarks: each bookmark inside the folders it is in, in order.
    let (out, r) = f.export(Dataset::SafariBookmarks, "html");
    let page = std::fs::read_to_string(out.join("bookmarks.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE NETSCAPE-Bookmark-file-1>"));
    let leaves: Vec<_> = sf.bookmarks.iter().filter(|b| b.kind == 0).collect();
    assert!(!leaves.is_empty());
    assert_eq!(r.records as usize, leaves.len());
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('\'', "&#39;")
            .replace('"', "&quot;")
    };
    for b in &leaves {
        let a = format!("<DT><A HREF=\"{}\">{}</A>", esc(&b.url), esc(&b.title));
        let at = page.find(&a).unwrap_or_else(|| panic!("{a} missing"));
        // Its folder's heading comes before it.
        if let Some(folder) = sf
            .bookmarks
            .iter()
            .find(|x| x.id == b.parent && x.kind == 1)
            && !folder.title.is_empty()
        {
            let h = format!("<H3>{}</H3>", esc(&folder.title));
            assert!(page[..at].contains(&h), "{h} before {a}");
        }
    }
    assert_eq!(
        page.matches("<DL><p>").count(),
        page.matches("</DL><p>").count()
    );
}

fn check_audio(f: &Fixture) {
    let ds = f.phone.datasets();
    let names = names(&f.phone);
    // Voicemail: every row in the CSV, every .amr copied byte for byte, named by date + caller.
    let (out, r) = f.export(Dataset::Voicemail, "audio");
    assert_eq!(r.records as usize, ds.voicemail.voicemails.len());
    assert_eq!(r.attachments_copied as usize, ds.voicemail.voicemails.len());
    let rows = parse_csv(&std::fs::read_to_string(out.join("voicemails.csv")).unwrap());
    for (v, row) in ds.voicemail.voicemails.iter().zip(&rows[1..]) {
        assert_eq!(row[0], v.rowid.to_string());
        assert_eq!(row[1], rfc(v.date));
        assert_eq!(row[2], v.duration.to_string());
        let who = name_for(&names, &v.sender).unwrap_or_else(|| v.sender.clone());
        assert_eq!(row[3], who);
        assert_eq!(row[4], v.flags.to_string());
        assert_eq!(row[6], "copied");
        assert!(
            row[5].ends_with(&format!("({}).amr", v.rowid)),
            "{}",
            row[5]
        );
        let pf = f
            .phone
            .find("HomeDomain", &format!("Library/Voicemail/{}.amr", v.rowid))
            .unwrap();
        let got = std::fs::read(out.join(&row[5])).unwrap();
        assert_eq!(got, f.phone.read(pf).unwrap());
        let mtime = std::fs::metadata(out.join(&row[5]))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            mtime
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            v.date as u64
        );
    }
    // Voice memos: titles, dates, audio.
    let (out, r) = f.export(Dataset::VoiceMemos, "audio");
    assert_eq!(r.records as usize, ds.voice_memos.recordings.len());
    let rows = parse_csv(&std::fs::read_to_string(out.join("voice_memos.csv")).unwrap());
    for (m, row) in ds.voice_memos.recordings.iter().zip(&rows[1..]) {
        assert_eq!(row[0], m.pk.to_string());
        assert_eq!(row[1], rfc(m.date));
        assert_eq!(row[2].parse::<f64>().unwrap(), m.duration);
        assert_eq!(row[3], m.label);
        assert_eq!(row[6], "copied");
        let pf = f
            .phone
            .find("MediaDomain", &format!("Media/Recordings/{}", m.path))
            .unwrap();
        assert_eq!(
            std::fs::read(out.join(&row[5])).unwrap(),
            f.phone.read(pf).unwrap()
        );
    }
}

fn check_apps(f: &Fixture) {
    let (out, r) = f.export(Dataset::Apps, "json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("apps.json")).unwrap()).unwrap();
    let mut want: Vec<&str> = f
        .phone
        .apps()
        .iter()
        .map(|a| a.bundle_id.as_str())
        .collect();
    want.sort_unstable();
    let got: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["bundle_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.records as usize, want.len());
    for a in v.as_array().unwrap() {
        let domain = format!("AppDomain-{}", a["bundle_id"].as_str().unwrap());
        let (files, bytes) = f
            .phone
            .files()
            .filter(|x| x.domain == domain && x.kind == EntryKind::File)
            .fold((0u64, 0u64), |(n, b), x| (n + 1, b + x.meta.size));
        assert_eq!(a["files"].as_u64().unwrap(), files, "{domain}");
        assert_eq!(a["bytes"].as_u64().unwrap(), bytes, "{domain}");
    }
}

/// `export apps --app ID`: every file of the app's container, groups and plugins, byte for
/// byte, nothing else; the phone's absolute symlinks skipped and counted.
fn check_app_files(f: &Fixture) {
    use iosnap_datasets::export::apps::export_app_files;
    let b = f.backup();
    let err = export_app_files(
        &b,
        &["com.example.absent".into()],
        None,
        &f._tmp.path().join("out-absent"),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, iosnap_datasets::Error::UnknownApp { .. }),
        "{err}"
    );
    assert!(!f._tmp.path().join("out-absent").exists());
    for app in f.phone.apps() {
        let out = f._tmp.path().join(format!("out-app-{}", app.bundle_id));
        let mut calls = 0;
        let r = export_app_files(
            &b,
            std::slice::from_ref(&app.bundle_id),
            Some("csv"),
            &out,
            &mut |_, _| calls += 1,
        )
        .unwrap();
        assert!(calls >= 2, "progress is reported");
        assert_eq!(r.groups, 1);
        assert_eq!((r.dataset.as_str(), r.format.as_str()), ("apps", "csv"));
        assert_eq!(r.out, out);
        assert_eq!(r.records as usize, f.phone.apps().len());
        let csv = parse_csv(&std::fs::read_to_string(out.join("apps.csv")).unwrap());
        assert_eq!(csv.len(), f.phone.apps().len() + 1);
        let domains: Vec<&String> = std::iter::once(&app.container_domain)
            .chain(&app.group_domains)
            .chain(&app.plugin_domains)
            .collect();
        let root = out.join(&app.bundle_id);
        let mut want_files = Vec::new();
        let mut links = 0;
        for pf in f.phone.files().filter(|x| domains.contains(&&x.domain)) {
            let p = root.join(&pf.domain).join(&pf.relative_path);
            match pf.kind {
                EntryKind::File => {
                    assert_eq!(
                        std::fs::read(&p).unwrap(),
                        f.phone.read(pf).unwrap(),
                        "{}",
                        p.display()
                    );
                    want_files.push(p.strip_prefix(&root).unwrap().to_path_buf());
                }
                EntryKind::Directory => assert!(p.is_dir(), "{}", p.display()),
                EntryKind::Symlink => links += 1,
                EntryKind::Other(_) => {}
            }
        }
        assert!(!want_files.is_empty(), "{}", app.bundle_id);
        let mut got = files_under(&root);
        got.sort();
        want_files.sort();
        assert_eq!(got, want_files, "{}", app.bundle_id);
        assert_eq!(r.files_written as usize, want_files.len() + 1);
        // The phone's container links point at absolute /var/mobile paths: never recreated.
        assert_eq!(r.skipped_count, links, "{:?}", r.skipped);
        // Only this app's domains, all of them.
        let mut top: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        let mut want_top: Vec<String> = domains
            .iter()
            .filter(|d| f.phone.files().any(|x| &&x.domain == *d))
            .map(|d| (*d).clone())
            .collect();
        want_top.sort();
        assert_eq!(top, want_top, "{}", app.bundle_id);
    }
}

fn check_photos(f: &Fixture) {
    let ph = &f.phone.datasets().photos;
    let (out, r) = f.export(Dataset::Photos, "files");
    assert_eq!(r.records as usize, ph.assets.len());
    assert_eq!(
        r.attachments_missing + r.attachments_unsafe + r.attachments_failed,
        0
    );
    assert_eq!(r.groups as usize, ph.albums.len());
    let read_phone = |path: &str| {
        f.phone
            .read(f.phone.find("CameraRollDomain", path).unwrap())
            .unwrap()
    };
    for a in &ph.assets {
        let p = out.join("All Photos").join(&a.filename);
        let got = std::fs::read(&p).unwrap();
        assert_eq!(
            got,
            read_phone(&format!("Media/{}/{}", a.directory, a.filename))
        );
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        assert_eq!(
            mtime
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            a.date_created as u64
        );
        if a.kind_subtype == 2 {
            let stem = a.filename.trim_end_matches(".HEIC");
            let mov = std::fs::read(out.join("All Photos").join(format!("{stem}.MOV"))).unwrap();
            assert_eq!(
                mov,
                read_phone(&format!("Media/{}/{stem}.MOV", a.directory))
            );
        }
    }
    for al in &ph.albums {
        let dir = out.join("Albums").join(&al.title);
        let n = std::fs::read_dir(&dir).unwrap().count();
        let live = al
            .assets
            .iter()
            .filter(|pk| {
                ph.assets
                    .iter()
                    .any(|a| a.pk == **pk && a.kind_subtype == 2)
            })
            .count();
        assert_eq!(n, al.assets.len() + live, "album {}", al.title);
        for pk in &al.assets {
            let a = ph.assets.iter().find(|x| x.pk == *pk).unwrap();
            assert_eq!(
                std::fs::read(dir.join(&a.filename)).unwrap(),
                std::fs::read(out.join("All Photos").join(&a.filename)).unwrap()
            );
        }
    }
}

fn check_notes(f: &Fixture) {
    let nd = &f.phone.datasets().notes;
    let folder = |pk: i64| nd.folders.iter().find(|x| x.0 == pk).unwrap().1.clone();
    // The library: every note, its text from the gzipped protobuf, folder, dates.
    let b = f.backup();
    let db = iosnap_datasets::notes::NotesDb::open(&b).unwrap();
    let legacy = db.is_legacy();
    assert_eq!(db.count().unwrap() as usize, nd.notes.len());
    let got: Vec<_> = db.notes().map(|n| n.unwrap()).collect();
    assert_eq!(got.len(), nd.notes.len());
    for (g, n) in got.iter().zip(&nd.notes) {
        assert_eq!(g.pk, n.pk);
        assert_eq!(g.identifier.as_deref(), Some(n.identifier.as_str()));
        assert_eq!(g.title.as_deref(), Some(n.title.as_str()));
        assert_eq!(g.text.as_deref(), Some(n.text.as_str()));
        assert_eq!(g.folder, Some(folder(n.folder)));
        assert_eq!(g.created, Some(n.created));
        assert_eq!(g.modified, Some(n.modified));
        // The legacy generation has no pinning.
        assert_eq!(g.pinned, n.pinned && !legacy);
        assert!(!g.locked && !g.deleted && g.body_error.is_none());
    }
    // The files.
    for fmt in ["md", "txt", "html"] {
        let (out, r) = f.export(Dataset::Notes, fmt);
        assert_eq!(r.records as usize, nd.notes.len());
        assert_eq!(r.skipped_count, 0);
        for n in &nd.notes {
            let p = out.join(folder(n.folder)).join(format!(
                "{} ({}).{fmt}",
                n.title.replace([':', '/'], "_"),
                n.pk
            ));
            let s = std::fs::read_to_string(&p).unwrap();
            for line in n.text.lines().skip(1) {
                let want = if fmt == "html" {
                    format!(
                        "<p>{}</p>",
                        line.replace('&', "&amp;").replace('\'', "&#39;")
                    )
                } else {
                    line.to_string()
                };
                assert!(s.contains(&want), "{} lacks {want}", p.display());
            }
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            assert_eq!(
                mtime
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
                n.modified as u64
            );
        }
        if fmt == "html" {
            assert!(out.join("index.html").exists());
        }
    }
}

fn check_whatsapp(f: &Fixture) {
    let wa = &f.phone.datasets().whatsapp;
    let (out, r) = f.export(Dataset::WhatsApp, "json");
    assert_eq!(r.records as usize, wa.messages.len());
    assert_eq!(r.groups as usize, wa.sessions.len());
    assert_eq!(
        r.attachments_missing + r.attachments_unsafe + r.attachments_failed,
        0
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("whatsapp.json")).unwrap()).unwrap();
    let chats = v["chats"].as_array().unwrap();
    let mut by_pk = HashMap::new();
    for (c, s) in chats.iter().zip(&wa.sessions) {
        assert_eq!(c["pk"].as_i64().unwrap(), s.pk);
        assert_eq!(c["contact_jid"].as_str().unwrap(), s.contact_jid);
        assert_eq!(c["name"].as_str().unwrap(), s.partner_name);
        assert_eq!(c["members"], serde_json::json!(s.members));
        for m in c["messages"].as_array().unwrap() {
            by_pk.insert(m["pk"].as_i64().unwrap(), m.clone());
        }
    }
    assert_eq!(by_pk.len(), wa.messages.len());
    let mut media = 0;
    for m in &wa.messages {
        let o = &by_pk[&m.pk];
        assert_eq!(o["session"].as_i64().unwrap(), m.session);
        assert_eq!(o["text"].as_str(), m.text.as_deref());
        assert_eq!(o["date"].as_str().unwrap(), rfc(m.date));
        assert_eq!(o["is_from_me"].as_bool().unwrap(), m.is_from_me);
        assert_eq!(o["from_jid"].as_str(), m.from_jid.as_deref());
        assert_eq!(o["stanza_id"].as_str().unwrap(), m.stanza_id);
        match &m.media_path {
            Some(p) => {
                let got = std::fs::read(out.join(o["media_file"].as_str().unwrap())).unwrap();
                let pf = f
                    .phone
                    .find(
                        "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
                        &format!("Message/{p}"),
                    )
                    .unwrap();
                assert_eq!(got, f.phone.read(pf).unwrap());
                media += 1;
            }
            None => assert!(o["media_file"].is_null()),
        }
    }
    assert!(media > 0);
    for fmt in ["html", "txt"] {
        let (out, r) = f.export(Dataset::WhatsApp, fmt);
        assert_eq!(r.records as usize, wa.messages.len());
        let pages = files_under(&out)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == fmt) && p != Path::new("index.html"))
            .count();
        assert_eq!(pages, wa.sessions.len());
    }
}

fn check_calls(f: &Fixture) {
    let ds = f.phone.datasets();
    let (out, r) = f.export(Dataset::Calls, "json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("calls.json")).unwrap()).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), ds.calls.calls.len());
    assert_eq!(r.records as usize, arr.len());
    for (c, o) in ds.calls.calls.iter().zip(arr) {
        assert_eq!(o["id"].as_i64().unwrap(), c.pk);
        assert_eq!(o["date"].as_str().unwrap(), rfc(c.date));
        assert_eq!(o["duration"].as_f64().unwrap(), c.duration);
        assert_eq!(o["address"].as_str().unwrap(), c.address);
        if let Some(n) = &c.name {
            assert_eq!(o["name"].as_str().unwrap(), n);
        }
        let dir = match (c.originated, c.answered) {
            (1, 1) => "Outgoing",
            (1, _) => "Cancelled",
            (_, 1) => "Incoming",
            _ => "Missed",
        };
        assert_eq!(o["direction"], dir);
        assert_eq!(o["service_provider"].as_str().unwrap(), c.service_provider);
        assert_eq!(o["unique_id"].as_str().unwrap(), c.unique_id);
    }
    let (out, _) = f.export(Dataset::Calls, "csv");
    let rows = parse_csv(&std::fs::read_to_string(out.join("calls.csv")).unwrap());
    assert_eq!(rows.len() - 1, ds.calls.calls.len());
    for (c, r) in ds.calls.calls.iter().zip(&rows[1..]) {
        assert_eq!(r[1], rfc(c.date));
        assert_eq!(r[5], c.address);
    }
}

/// The library's own iterators (no export): every message, ROWID order, across pages.
fn check_iterators(f: &Fixture) {
    let ds = f.phone.datasets();
    let b = f.backup();
    let db = iosnap_datasets::messages::MessagesDb::open(&b).unwrap();
    let got: Vec<_> = db.messages().map(|m| m.unwrap()).collect();
    assert_eq!(got.len(), ds.messages.messages.len());
    for (g, m) in got.iter().zip(&ds.messages.messages) {
        assert_eq!(g.rowid, m.rowid);
        assert_eq!(g.chat_id, Some(m.chat_id));
        assert_eq!(g.text.as_deref(), Some(m.text.as_str()));
        assert_eq!(g.attachments.len(), usize::from(m.attachment_id.is_some()));
    }
    assert_eq!(db.count_orphans().unwrap(), 0);
    let chats = db.chats().unwrap();
    let biggest = chats
        .iter()
        .map(|c| db.chat_messages(c.rowid).count())
        .max()
        .unwrap();
    assert!(biggest > 0);
    let calls = iosnap_datasets::calls::CallsDb::open(&b).unwrap();
    assert_eq!(calls.calls().count(), ds.calls.calls.len());
}

fn check_counts(f: &Fixture) {
    let counts = iosnap_datasets::counts::count_all(&f.backup()).unwrap();
    let get = |k: &str| counts.iter().find(|c| c.key == k).unwrap().count;
    let ds = f.phone.datasets();
    let l = f.phone.levels();
    assert_eq!(get("messages"), Some(ds.messages.messages.len() as u64));
    assert_eq!(get("chats"), Some(ds.messages.chats.len() as u64));
    assert_eq!(get("contacts"), Some(u64::from(l.contacts)));
    assert_eq!(get("calls"), Some(u64::from(l.calls)));
    assert_eq!(get("events"), Some(ds.calendar.events.len() as u64));
    assert_eq!(get("voicemails"), Some(u64::from(l.voicemails)));
    assert_eq!(get("voice_memos"), Some(u64::from(l.voice_memos)));
    assert_eq!(get("photos"), Some(u64::from(l.photos)));
    assert_eq!(get("apps"), Some(f.phone.apps().len() as u64));
    // Absent datasets may say why (the keychain of an unencrypted backup); present ones read.
    assert!(
        counts
            .iter()
            .filter(|c| c.present)
            .all(|c| c.error.is_none()),
        "{counts:?}"
    );
}

#[test]
fn ios_15_plain() {
    let f = fixture("15.7", false);
    check_counts(&f);
    check_iterators(&f);
    check_messages_json(&f);
    check_messages_pages(&f);
    check_contacts(&f);
    check_calls(&f);
    check_calendar(&f);
    check_safari(&f);
    check_audio(&f);
    check_apps(&f);
    check_app_files(&f);
    check_photos(&f);
    check_notes(&f);
    check_whatsapp(&f);
}

/// The legacy (iOS ≤ 8) notes.sqlite with HTML bodies: read and exported record by record, in an
/// encrypted backup; `datasets` counts it.
#[test]
fn legacy_notes_store() {
    let f = fixture_with("15.7", true, true);
    let b = f.backup();
    assert!(
        iosnap_datasets::notes::NotesDb::open(&b)
            .unwrap()
            .is_legacy()
    );
    let counts = iosnap_datasets::counts::count_all(&b).unwrap();
    let notes = counts.iter().find(|c| c.key == "notes").unwrap();
    assert_eq!(
        notes.count,
        Some(f.phone.datasets().notes.notes.len() as u64),
        "{notes:?}"
    );
    check_notes(&f);
}

#[test]
fn ios_17_encrypted() {
    let f = fixture("17.5", true);
    // iOS 16+: some bodies only in attributedBody — the JSON check covers them.
    assert!(
        f.phone
            .datasets()
            .messages
            .messages
            .iter()
            .any(|m| m.text_column_null)
    );
    check_counts(&f);
    check_iterators(&f);
    check_messages_json(&f);
    check_messages_pages(&f);
    check_contacts(&f);
    check_calls(&f);
    check_calendar(&f);
    check_safari(&f);
    check_audio(&f);
    check_apps(&f);
    check_app_files(&f);
    check_photos(&f);
    check_notes(&f);
    check_whatsapp(&f);
}

/// The chromium binary on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Every HTML file under `root`.
fn html_pages(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = files_under(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| root.join(p))
        .collect();
    v.sort();
    v
}

/// Every HTML page we write (messages, notes, WhatsApp, Safari bookmarks) opens in headless
/// Chromium with no JavaScript exception, no console or log error, no failed load (a missing
/// attachment file), every image decoded and every local link pointing at a file that exists
/// (tests/peers/html_check.py, CDP over --remote-debugging-pipe, Python standard library only).
/// Without chromium the test says so loudly and passes, unless IOSNAP_REQUIRE_CHROMIUM=1.
/// IOSNAP_SCREENSHOT_DIR=DIR saves a screenshot of the first conversation page with pictures.
#[test]
fn html_opens_in_chromium() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var("IOSNAP_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "chromium is required (IOSNAP_REQUIRE_CHROMIUM=1) but not installed"
        );
        eprintln!(
            "\n*** skipped: chromium not installed — the HTML exports were NOT checked in a \
             browser (apt-get install chromium, see scripts/debian-packages.txt) ***\n"
        );
        return;
    };
    let f = fixture("17.5", false);
    let mut pages = Vec::new();
    for d in [
        Dataset::Messages,
        Dataset::Notes,
        Dataset::WhatsApp,
        Dataset::SafariBookmarks,
    ] {
        let (out, _) = f.export(d, "html");
        let p = html_pages(&out);
        assert!(
            p.len() >= 2 || d == Dataset::SafariBookmarks,
            "{d:?}: {p:?}"
        );
        assert!(!p.is_empty(), "{d:?}");
        pages.extend(p);
    }
    let mut args: Vec<std::ffi::OsString> = vec![chromium.into()];
    if let Some(dir) = std::env::var_os("IOSNAP_SCREENSHOT_DIR") {
        let out = f._tmp.path().join("out-messages-html");
        let with_pictures = html_pages(&out).into_iter().find(|p| {
            p.file_name().is_some_and(|n| n != "index.html")
                && std::fs::read_to_string(p).unwrap().contains("<img")
        });
        if let Some(p) = with_pictures {
            let png = Path::new(&dir).join("conversation.png");
            args.push("--screenshot".into());
            args.push(format!("{}={}", p.display(), png.display()).into());
        }
    }
    args.extend(pages.iter().map(|p| p.clone().into_os_string()));
    let venv = std::env::var_os("IOSNAP_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv"));
    let python = Some(venv.join("bin/python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/html_check.py");
    let o = std::process::Command::new(python)
        .arg(&script)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "html_check.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checked = v["pages"].as_array().unwrap();
    assert_eq!(checked.len(), pages.len());
    let bad: Vec<String> = checked
        .iter()
        .filter(|p| !p["errors"].as_array().unwrap().is_empty())
        .map(|p| format!("{}: {}", p["page"], p["errors"]))
        .collect();
    assert!(
        bad.is_empty(),
        "{} pages with errors:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "{} pages opened without errors in {}",
        pages.len(),
        v["chromium"]
    );
}
