//! WhatsApp export: one conversation per chat as HTML (`index.html` + pages) or TXT, or all of
//! them in `whatsapp.json`; media copied once into `media/`.

use std::io::Write;

use iosnap_format::Backup;
use serde::Serialize;

use super::text::{html, url_path};
use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::contacts::ContactIndex;
use crate::error::{IoContext, Result};
use crate::whatsapp::{DOMAIN, Session, WaMessage, WhatsAppDb};

/// One message as exported to JSON.
#[derive(Debug, Serialize)]
struct MessageOut<'a> {
    #[serde(flatten)]
    m: &'a WaMessage,
    sender_name: String,
    media_file: Option<String>,
}

fn jid_number(jid: &str) -> &str {
    jid.split('@').next().unwrap_or(jid)
}

fn chat_name(s: &Session, index: &ContactIndex) -> String {
    s.partner_name
        .clone()
        .or_else(|| {
            s.contact_jid
                .as_deref()
                .and_then(|j| index.name(jid_number(j)).map(str::to_string))
        })
        .or_else(|| s.contact_jid.clone())
        .unwrap_or_else(|| format!("Chat {}", s.pk))
}

fn sender(m: &WaMessage, s: &Session, index: &ContactIndex, chat: &str) -> String {
    if m.is_from_me {
        return "Me".into();
    }
    if let Some(j) = &m.from_jid {
        if let Some(n) = index.name(jid_number(j)) {
            return n.to_string();
        }
        if s.session_type != Some(1) && s.contact_jid.as_deref() == Some(j) {
            return chat.to_string();
        }
    }
    m.push_name
        .clone()
        .or_else(|| m.from_jid.as_deref().map(|j| jid_number(j).to_string()))
        .unwrap_or_else(|| chat.to_string())
}

/// Writes the export.
pub(crate) fn export(
    backup: &Backup,
    db: &WhatsAppDb,
    index: &ContactIndex,
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let mut media_dir: Option<OutDir> = None;
    let mut json = match fmt {
        "json" => {
            let (p, mut w) = out.file("whatsapp.json")?;
            w.write_all(b"{\"chats\":[").at(&p)?;
            Some((p, w))
        }
        _ => None,
    };
    let mut index_rows = Vec::new();
    for (ci, s) in db.sessions()?.iter().enumerate() {
        let name = chat_name(s, index);
        let short: String = name.chars().take(60).collect();
        let stem = safe_name(&format!("{} ({})", safe_name(&short), s.pk));
        let mut page = match fmt {
            "html" => {
                let (p, mut w) = out.file(&format!("{stem}.html"))?;
                w.write_all(format!(
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:-apple-system,Helvetica,Arial,sans-serif,'Apple Color Emoji','Segoe UI Emoji','Noto Color Emoji';max-width:860px;margin:2em auto;padding:0 1em}}.m{{margin:.5em 0;padding:.5em .8em;border-radius:12px;background:#eee;max-width:75%;overflow-wrap:anywhere}}.me{{margin-left:auto;background:#dcf8c6}}.w{{font-size:.75em;color:#666}}img{{max-width:100%}}</style></head><body>\n<p><a href=\"index.html\">← All chats</a></p><h1>{t}</h1>\n",
                    t = html(&name)
                ).as_bytes()).at(&p)?;
                Some((p, w))
            }
            "txt" => {
                let (p, mut w) = out.file(&format!("{stem}.txt"))?;
                w.write_all(format!("{name}\n\n").as_bytes()).at(&p)?;
                Some((p, w))
            }
            _ => None,
        };
        if let Some((p, w)) = json.as_mut() {
            let head = serde_json::to_string(s)?;
            let head = head.strip_suffix('}').unwrap_or(&head);
            let sep = if ci == 0 { "" } else { "," };
            let nm = serde_json::to_string(&name)?;
            w.write_all(format!("{sep}\n{head},\"name\":{nm},\"messages\":[").as_bytes())
                .at(p)?;
        }
        let mut count = 0u64;
        for m in db.messages(s.pk) {
            let m = m?;
            let who = sender(&m, s, index, &name);
            let mut media_file = None;
            if m.media_unsafe {
                report.attachments_unsafe += 1;
            } else if let Some(rel) = &m.media_path {
                match backup.find(DOMAIN, rel) {
                    Ok(e) if e.has_data() => {
                        let res = (|| -> Result<String> {
                            if media_dir.is_none() {
                                media_dir = Some(out.subdir("media")?);
                            }
                            let dir = media_dir.as_ref().ok_or_else(|| crate::Error::Io {
                                path: "media".into(),
                                source: std::io::Error::other("media folder not created"),
                            })?;
                            let base = rel.rsplit('/').next().unwrap_or("media");
                            let file = safe_name(&format!("{}-{}", m.pk, safe_name(base)));
                            let (p, mut w) = dir.file(&file)?;
                            std::io::copy(&mut backup.open_file(&e)?, &mut w).at(&p)?;
                            finish(&p, w)?;
                            Ok(format!("media/{file}"))
                        })();
                        match res {
                            Ok(f) => {
                                report.attachments_copied += 1;
                                report.files_written += 1;
                                media_file = Some(f);
                            }
                            Err(err) => {
                                report.attachments_failed += 1;
                                report.skip(format!("WhatsApp media of message {}: {err}", m.pk));
                            }
                        }
                    }
                    _ => report.attachments_missing += 1,
                }
            }
            let when = m.date.map(crate::time::human).unwrap_or_default();
            match (fmt, page.as_mut(), json.as_mut()) {
                ("html", Some((p, w)), _) => {
                    let mut s = format!(
                        "<div class=\"m{}\"><b>{}</b>",
                        if m.is_from_me { " me" } else { "" },
                        html(&who)
                    );
                    if let Some(t) = &m.text {
                        s.push_str(&format!("<div>{}</div>", html(t).replace('\n', "<br>")));
                    }
                    if let Some(f) = &media_file {
                        let href = html(&url_path(f));
                        s.push_str(&format!(
                            "<div><a href=\"{href}\"><img src=\"{href}\" loading=\"lazy\" alt=\"media\"></a></div>"
                        ));
                    } else if m.media_path.is_some() || m.media_unsafe {
                        s.push_str("<div class=\"w\">(media not in the backup)</div>");
                    }
                    s.push_str(&format!("<div class=\"w\">{}</div></div>\n", html(&when)));
                    w.write_all(s.as_bytes()).at(p)?;
                }
                ("txt", Some((p, w)), _) => {
                    let mut s = format!("[{when}] {who}: {}\n", m.text.as_deref().unwrap_or(""));
                    if let Some(f) = &media_file {
                        s.push_str(&format!("    [media: {f}]\n"));
                    }
                    w.write_all(s.as_bytes()).at(p)?;
                }
                (_, _, Some((p, w))) => {
                    if count > 0 {
                        w.write_all(b",").at(p)?;
                    }
                    serde_json::to_writer(
                        &mut *w,
                        &MessageOut {
                            m: &m,
                            sender_name: who,
                            media_file,
                        },
                    )?;
                }
                _ => {}
            }
            count += 1;
            report.records += 1;
            if report.records.is_multiple_of(1000) {
                progress(report.records, total);
            }
        }
        if let Some((p, mut w)) = page.take() {
            if fmt == "html" {
                w.write_all(b"</body></html>\n").at(&p)?;
            }
            finish(&p, w)?;
            report.files_written += 1;
            index_rows.push((name.clone(), p, count));
        }
        if let Some((p, w)) = json.as_mut() {
            w.write_all(b"]}").at(p)?;
        }
        report.groups += 1;
    }
    if let Some((p, mut w)) = json.take() {
        w.write_all(b"\n]}\n").at(&p)?;
        finish(&p, w)?;
        report.files_written += 1;
    }
    if fmt == "html" {
        let mut s = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>WhatsApp</title></head><body><h1>WhatsApp</h1><ul>\n",
        );
        for (name, p, count) in &index_rows {
            let file = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            s.push_str(&format!(
                "<li><a href=\"{}\">{}</a> ({count})</li>\n",
                html(&url_path(&file)),
                html(name)
            ));
        }
        s.push_str("</ul></body></html>\n");
        let (p, mut w) = out.file("index.html")?;
        w.write_all(s.as_bytes()).at(&p)?;
        finish(&p, w)?;
        report.files_written += 1;
    }
    progress(report.records, total);
    Ok(report)
}
