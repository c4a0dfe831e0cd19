//! Messages export: HTML (one page per conversation + `index.html`), TXT (one file per
//! conversation), CSV (`messages.csv`), JSON (`messages.json`). Attachments are copied once
//! into `attachments/` next to the pages, whatever the format.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use iosnap_format::Backup;
use serde::Serialize;

use super::copier::{Copier, CopyInput, CopyJob};
use super::text::{csv_row, html, url_path};
use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::contacts::ContactIndex;
use crate::error::{IoContext, Result};
use crate::messages::{ATTACHMENT_DOMAIN, Attachment, Chat, Message, MessageIter, MessagesDb};
use crate::time::{human, rfc3339};

/// Where an attachment ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentStatus {
    /// Copied to `attachments/`.
    Copied,
    /// The database names a file the backup does not have.
    Missing,
    /// The stored path was unsafe (`..`, outside the home folder): not looked up.
    Unsafe,
    /// The backup has the file but it could not be read.
    Failed,
}

/// One attachment as exported.
#[derive(Debug, Clone, Serialize)]
pub struct AttachmentOut {
    /// Attachment ROWID.
    pub rowid: i64,
    /// Original file name.
    pub name: String,
    /// MIME type.
    pub mime_type: Option<String>,
    /// Path relative to the export folder, when copied.
    pub path: Option<String>,
    /// What happened to it.
    pub status: AttachmentStatus,
}

/// A tapback as exported.
#[derive(Debug, Clone, Serialize)]
pub struct TapbackOut {
    /// `associated_message_type`.
    pub kind: i64,
    /// "loved", "liked" …
    pub verb: String,
    /// Whether the reaction was removed.
    pub removed: bool,
    /// GUID of the message reacted to.
    pub target_guid: String,
    /// Part index reacted to.
    pub target_part: Option<u32>,
    /// Custom emoji (iOS 18+).
    pub emoji: Option<String>,
}

/// One message as exported (the JSON shape, documented in docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct MessageOut {
    /// ROWID.
    pub rowid: i64,
    /// GUID.
    pub guid: Option<String>,
    /// Sent, RFC 3339.
    pub date: Option<String>,
    /// Read, RFC 3339.
    pub date_read: Option<String>,
    /// Sent by the phone's owner.
    pub is_from_me: bool,
    /// Sender address (None for the owner).
    pub sender: Option<String>,
    /// Sender name: "Me", the contact's name, else the address.
    pub sender_name: String,
    /// Service.
    pub service: Option<String>,
    /// Body.
    pub text: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Attachments.
    pub attachments: Vec<AttachmentOut>,
    /// Tapback carried by this message.
    pub tapback: Option<TapbackOut>,
    /// Reply: GUID of the thread's originator.
    pub reply_to: Option<String>,
    /// Last edit, RFC 3339.
    pub edited: Option<String>,
    /// Unsent at, RFC 3339.
    pub unsent: Option<String>,
    /// A group event sentence (rename, join, leave …), for event rows.
    pub event: Option<String>,
}

/// A participant as exported.
#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    /// Address.
    pub address: String,
    /// Contact name, if known.
    pub name: Option<String>,
}

/// A conversation header as exported.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationOut {
    /// chat ROWID (0: messages in no conversation).
    pub chat_id: i64,
    /// chat GUID.
    pub guid: Option<String>,
    /// Title: group name, else participant names.
    pub name: String,
    /// Whether it is a group.
    pub is_group: bool,
    /// Service name.
    pub service: Option<String>,
    /// Participants.
    pub participants: Vec<Participant>,
}

struct Ctx<'a> {
    backup: &'a Backup,
    handles: HashMap<i64, String>,
    index: &'a ContactIndex,
    out: &'a OutDir,
    att_dir: Option<Arc<OutDir>>,
    /// Attachment copies run here, beside the page rendering.
    copier: Copier,
    copied: HashMap<i64, (Option<String>, AttachmentStatus)>,
    /// Manifest.db opened once for every attachment lookup (`Backup::find` opens it per call,
    /// which dominated exports with thousands of attachments); `None` for mbdb backups.
    manifest: Option<iosnap_format::manifest_db::ManifestDb>,
}

impl Ctx<'_> {
    fn name_of_handle(&self, handle: i64) -> (Option<String>, String) {
        match self.handles.get(&handle) {
            Some(addr) => (
                Some(addr.clone()),
                self.index
                    .name(addr)
                    .map(str::to_string)
                    .unwrap_or_else(|| addr.clone()),
            ),
            None => (None, "Unknown".to_string()),
        }
    }

    fn attachment(&mut self, a: &Attachment, report: &mut ExportReport) -> AttachmentOut {
        let name = a.display_name();
        let (path, status) = match self.copied.get(&a.rowid) {
            Some(done) => done.clone(),
            None => {
                let done = self.copy(a, &name, report);
                self.copied.insert(a.rowid, done.clone());
                done
            }
        };
        AttachmentOut {
            rowid: a.rowid,
            name,
            mime_type: a.mime_type.clone(),
            path,
            status,
        }
    }

    fn copy(
        &mut self,
        a: &Attachment,
        name: &str,
        report: &mut ExportReport,
    ) -> (Option<String>, AttachmentStatus) {
        let Some(rel) = a.backup_path() else {
            report.attachments_unsafe += 1;
            return (None, AttachmentStatus::Unsafe);
        };
        let found = match &self.manifest {
            Some(m) => m.find(ATTACHMENT_DOMAIN, &rel).ok().flatten(),
            None => self.backup.find(ATTACHMENT_DOMAIN, &rel).ok(),
        };
        let entry = match found {
            Some(e) if e.has_data() => e,
            _ => {
                report.attachments_missing += 1;
                return (None, AttachmentStatus::Missing);
            }
        };
        let res = (|| -> Result<String> {
            let dir = match &self.att_dir {
                Some(d) => Arc::clone(d),
                None => {
                    let d = Arc::new(self.out.subdir("attachments")?);
                    self.att_dir = Some(Arc::clone(&d));
                    d
                }
            };
            let chars: Vec<char> = name.chars().collect();
            let tail: String = chars[chars.len().saturating_sub(80)..].iter().collect();
            let file = safe_name(&format!("{}-{}", a.rowid, safe_name(&tail)));
            // The source is opened here, so an unreadable file is reported on this message;
            // creating and filling the copy happens on the copy workers.
            let input = if self.backup.is_encrypted() {
                CopyInput::Reader(self.backup.open_file(&entry)?)
            } else {
                let src = self.backup.data_path(&entry);
                CopyInput::File(std::fs::File::open(&src).at(&src)?)
            };
            let done = self.copier.submit(CopyJob {
                key: a.rowid,
                what: rel.clone(),
                dir,
                name: file.clone(),
                input,
                mtime: entry.meta.mtime,
            });
            if let Some(done) = done {
                done.result?;
                report.attachments_copied += 1;
                report.files_written += 1;
            }
            Ok(format!("attachments/{file}"))
        })();
        match res {
            Ok(p) => (Some(p), AttachmentStatus::Copied),
            Err(e) => {
                report.attachments_failed += 1;
                report.skip(format!("attachment {} ({rel}): {e}", a.rowid));
                (None, AttachmentStatus::Failed)
            }
        }
    }

    /// Waits for the queued attachment copies and counts them in `report`.
    fn finish_copies(self, report: &mut ExportReport) {
        for done in self.copier.finish() {
            match done.result {
                Ok(()) => {
                    report.attachments_copied += 1;
                    report.files_written += 1;
                }
                Err(e) => {
                    report.attachments_failed += 1;
                    report.skip(format!("attachment {} ({}): {e}", done.key, done.what));
                }
            }
        }
    }

    fn render(&mut self, m: &Message, report: &mut ExportReport) -> MessageOut {
        let (sender, sender_name) = if m.is_from_me {
            (None, "Me".to_string())
        } else {
            self.name_of_handle(m.handle_id)
        };
        let attachments = m
            .attachments
            .iter()
            .map(|a| self.attachment(a, report))
            .collect();
        let event = m.is_event().then(|| {
            let other = self.name_of_handle(m.other_handle).1;
            m.event_text(&sender_name, &other)
        });
        MessageOut {
            rowid: m.rowid,
            guid: m.guid.clone(),
            date: m.date.map(rfc3339),
            date_read: m.date_read.map(rfc3339),
            is_from_me: m.is_from_me,
            sender,
            sender_name,
            service: m.service.clone(),
            text: m.text.clone(),
            subject: m.subject.clone(),
            attachments,
            tapback: m.tapback.as_ref().map(|t| TapbackOut {
                kind: t.kind,
                verb: t.verb(),
                removed: t.is_removal(),
                target_guid: t.target_guid.clone(),
                target_part: t.target_part,
                emoji: t.emoji.clone(),
            }),
            reply_to: m.thread_originator_guid.clone(),
            edited: m.date_edited.map(rfc3339),
            unsent: m.date_retracted.map(rfc3339),
            event,
        }
    }

    fn conversation(&self, chat: &Chat) -> ConversationOut {
        let participants: Vec<Participant> = chat
            .handles
            .iter()
            .filter_map(|h| self.handles.get(h))
            .map(|a| Participant {
                address: a.clone(),
                name: self.index.name(a).map(str::to_string),
            })
            .collect();
        let name = chat.display_name.clone().unwrap_or_else(|| {
            let names: Vec<String> = participants
                .iter()
                .map(|p| p.name.clone().unwrap_or_else(|| p.address.clone()))
                .collect();
            if names.is_empty() {
                chat.chat_identifier
                    .clone()
                    .unwrap_or_else(|| format!("Conversation {}", chat.rowid))
            } else {
                names.join(", ")
            }
        });
        ConversationOut {
            chat_id: chat.rowid,
            guid: chat.guid.clone(),
            name,
            is_group: chat.is_group(),
            service: chat.service_name.clone(),
            participants,
        }
    }
}

/// The file stem of a conversation: its title (shortened, made safe) and chat id.
fn stem(conv: &ConversationOut) -> String {
    let short: String = conv.name.chars().take(60).collect();
    safe_name(&format!("{} ({})", safe_name(&short), conv.chat_id))
}

const CSS: &str = "body{font-family:-apple-system,Helvetica,Arial,sans-serif,'Apple Color Emoji','Segoe UI Emoji','Noto Color Emoji';max-width:860px;margin:2em auto;padding:0 1em;background:#fff;color:#111}
.m{margin:.5em 0;padding:.5em .8em;border-radius:14px;max-width:75%;background:#e9e9eb;overflow-wrap:anywhere}
.me{margin-left:auto;background:#0b84ff;color:#fff}.me a{color:#fff}
.who{font-size:.8em;font-weight:600}.when{font-size:.75em;opacity:.7}
.ev,.tb{text-align:center;font-size:.85em;color:#666;margin:.4em 0}
.att img,.att video{max-width:100%;border-radius:8px}.note{font-size:.75em;font-style:italic;opacity:.8}
table{border-collapse:collapse}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}";

fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>\n",
        html(title)
    )
}

/// "2024-02-29 12:34:56 UTC" from the RFC 3339 form, for people reading pages.
fn pretty(rfc: &str) -> String {
    match rfc.strip_suffix('Z') {
        Some(s) => format!("{} UTC", s.replacen('T', " ", 1)),
        None => rfc.to_string(),
    }
}

fn html_message(o: &MessageOut) -> String {
    let anchor = o
        .guid
        .as_deref()
        .map(|g| format!(" id=\"m-{}\"", html(g)))
        .unwrap_or_default();
    let when = o.date.as_deref().unwrap_or("");
    if let Some(ev) = &o.event {
        return format!(
            "<div class=\"ev\"{anchor}>{} · {}</div>\n",
            html(ev),
            html(when)
        );
    }
    if let Some(t) = &o.tapback {
        let verb = if t.removed {
            format!("removed a reaction ({})", t.verb)
        } else {
            t.verb.clone()
        };
        return format!(
            "<div class=\"tb\"{anchor}>{} {} <a href=\"#m-{}\">a message</a> · {}</div>\n",
            html(&o.sender_name),
            html(&verb),
            html(&t.target_guid),
            html(when)
        );
    }
    let mut s = format!(
        "<div class=\"m{}\"{anchor}><div class=\"who\">{}</div>",
        if o.is_from_me { " me" } else { "" },
        html(&o.sender_name)
    );
    if let Some(r) = &o.reply_to {
        s.push_str(&format!(
            "<div class=\"note\"><a href=\"#m-{}\">↪ reply in thread</a></div>",
            html(r)
        ));
    }
    if let Some(subj) = &o.subject {
        s.push_str(&format!("<div><b>{}</b></div>", html(subj)));
    }
    if let Some(t) = &o.text {
        let body = html(t.trim_matches('\u{fffc}')).replace('\n', "<br>");
        if !body.is_empty() {
            s.push_str(&format!("<div>{body}</div>"));
        }
    }
    for a in &o.attachments {
        s.push_str("<div class=\"att\">");
        match &a.path {
            Some(p) => {
                let href = html(&url_path(p));
                let mime = a.mime_type.as_deref().unwrap_or("");
                if mime.starts_with("image/") {
                    s.push_str(&format!(
                        "<a href=\"{href}\"><img src=\"{href}\" alt=\"{}\" loading=\"lazy\"></a>",
                        html(&a.name)
                    ));
                } else if mime.starts_with("video/") {
                    s.push_str(&format!(
                        "<video controls preload=\"none\" src=\"{href}\"></video>"
                    ));
                } else if mime.starts_with("audio/") {
                    s.push_str(&format!(
                        "<audio controls preload=\"none\" src=\"{href}\"></audio>"
                    ));
                } else {
                    s.push_str(&format!("<a href=\"{href}\">📎 {}</a>", html(&a.name)));
                }
            }
            None => s.push_str(&format!(
                "<span class=\"note\">📎 {} (not in the backup: {})</span>",
                html(&a.name),
                match a.status {
                    AttachmentStatus::Unsafe => "unsafe path, skipped",
                    AttachmentStatus::Failed => "unreadable",
                    _ => "missing",
                }
            )),
        }
        s.push_str("</div>");
    }
    s.push_str(&format!("<div class=\"when\">{}", html(when)));
    if let Some(e) = &o.edited {
        s.push_str(&format!(" · edited {}", html(&pretty(e))));
    }
    if let Some(u) = &o.unsent {
        s.push_str(&format!(" · unsent {}", html(&pretty(u))));
    }
    s.push_str("</div></div>\n");
    s
}

fn txt_message(o: &MessageOut) -> String {
    let when = o
        .date
        .as_deref()
        .map(pretty)
        .unwrap_or_else(|| "????".into());
    if let Some(ev) = &o.event {
        return format!("[{when}] * {ev}\n");
    }
    if let Some(t) = &o.tapback {
        let verb = if t.removed {
            format!("removed a reaction ({})", t.verb)
        } else {
            t.verb.clone()
        };
        return format!(
            "[{when}] {} {verb} a message ({})\n",
            o.sender_name, t.target_guid
        );
    }
    let mut s = format!("[{when}] {}: ", o.sender_name);
    if let Some(subj) = &o.subject {
        s.push_str(&format!("[{subj}] "));
    }
    if let Some(t) = &o.text {
        s.push_str(&t.trim_matches('\u{fffc}').replace('\n', "\n    "));
    }
    s.push('\n');
    if let Some(r) = &o.reply_to {
        s.push_str(&format!("    (reply in thread {r})\n"));
    }
    for a in &o.attachments {
        match &a.path {
            Some(p) => s.push_str(&format!("    [attachment: {p}]\n")),
            None => s.push_str(&format!("    [attachment {} not in the backup]\n", a.name)),
        }
    }
    if let Some(e) = &o.edited {
        s.push_str(&format!("    (edited {})\n", pretty(e)));
    }
    if let Some(u) = &o.unsent {
        s.push_str(&format!("    (unsent {})\n", pretty(u)));
    }
    s
}

const CSV_HEADER: [&str; 17] = [
    "conversation_id",
    "conversation",
    "message_id",
    "guid",
    "date",
    "sender",
    "sender_name",
    "is_from_me",
    "service",
    "text",
    "attachments",
    "tapback",
    "tapback_target",
    "reply_to",
    "edited",
    "unsent",
    "event",
];

fn csv_message(conv: &ConversationOut, o: &MessageOut) -> String {
    let atts = o
        .attachments
        .iter()
        .map(|a| a.path.clone().unwrap_or_else(|| format!("({})", a.name)))
        .collect::<Vec<_>>()
        .join(";");
    let s = |x: &Option<String>| x.clone().unwrap_or_default();
    csv_row(&[
        conv.chat_id.to_string(),
        conv.name.clone(),
        o.rowid.to_string(),
        s(&o.guid),
        s(&o.date),
        s(&o.sender),
        o.sender_name.clone(),
        u8::from(o.is_from_me).to_string(),
        s(&o.service),
        s(&o.text),
        atts,
        o.tapback
            .as_ref()
            .map(|t| t.verb.clone())
            .unwrap_or_default(),
        o.tapback
            .as_ref()
            .map(|t| t.target_guid.clone())
            .unwrap_or_default(),
        s(&o.reply_to),
        s(&o.edited),
        s(&o.unsent),
        s(&o.event),
    ])
}

/// Writes the export; see the module docs for the layout.
pub(crate) fn export(
    backup: &Backup,
    db: &MessagesDb,
    index: &ContactIndex,
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count_messages()?;
    let mut chats: Vec<Option<Chat>> = db.chats()?.into_iter().map(Some).collect();
    if db.count_orphans()? > 0 {
        chats.push(None);
    }
    let mut ctx = Ctx {
        backup,
        handles: db.handles()?.into_iter().map(|h| (h.rowid, h.id)).collect(),
        index,
        out,
        att_dir: None,
        copier: Copier::for_this_machine(),
        copied: HashMap::new(),
        manifest: match backup.decrypted_manifest_path() {
            Some(p) => Some(iosnap_format::manifest_db::ManifestDb::open(&p)?),
            None => None,
        },
    };
    let mut done = 0u64;
    progress(0, total);

    // Single-file formats are opened once; page formats per conversation.
    let single = match fmt {
        "csv" => Some(out.file("messages.csv")?),
        "json" => Some(out.file("messages.json")?),
        _ => None,
    };
    let mut single = single;
    if let Some((p, w)) = single.as_mut() {
        match fmt {
            "csv" => w.write_all(csv_row(&CSV_HEADER).as_bytes()).at(p)?,
            _ => w.write_all(b"{\"conversations\":[").at(p)?,
        }
    }
    let mut index_rows = Vec::new();
    for (ci, chat) in chats.iter().enumerate() {
        let (conv, iter): (ConversationOut, MessageIter<'_>) = match chat {
            Some(c) => (ctx.conversation(c), db.chat_messages(c.rowid)),
            None => (
                ConversationOut {
                    chat_id: 0,
                    guid: None,
                    name: "Messages in no conversation".into(),
                    is_group: false,
                    service: None,
                    participants: Vec::new(),
                },
                db.orphan_messages(),
            ),
        };
        let page = match fmt {
            "html" => {
                let (p, mut w) = out.file(&format!("{}.html", stem(&conv)))?;
                let who = conv
                    .participants
                    .iter()
                    .map(|p| match &p.name {
                        Some(n) => format!("{} ({})", n, p.address),
                        None => p.address.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let head = format!(
                    "{}<p><a href=\"index.html\">← All conversations</a></p><h1>{}</h1><p>{}</p>\n",
                    page_head(&conv.name),
                    html(&conv.name),
                    html(&who)
                );
                w.write_all(head.as_bytes()).at(&p)?;
                Some((p, w))
            }
            "txt" => {
                let (p, mut w) = out.file(&format!("{}.txt", stem(&conv)))?;
                let who = conv
                    .participants
                    .iter()
                    .map(|p| match &p.name {
                        Some(n) => format!("{} <{}>", n, p.address),
                        None => p.address.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                w.write_all(format!("{}\nParticipants: {who}\n\n", conv.name).as_bytes())
                    .at(&p)?;
                Some((p, w))
            }
            _ => None,
        };
        let mut page = page;
        if fmt == "json"
            && let Some((p, w)) = single.as_mut()
        {
            let head = serde_json::to_string(&conv)?;
            // Re-open the object to append the messages array.
            let head = head.strip_suffix('}').unwrap_or(&head);
            let sep = if ci == 0 { "" } else { "," };
            w.write_all(format!("{sep}\n{head},\"messages\":[").as_bytes())
                .at(p)?;
        }
        let mut count = 0u64;
        let mut first_date = None;
        let mut last_date = None;
        for m in iter {
            let m = m?;
            let o = ctx.render(&m, &mut report);
            if first_date.is_none() {
                first_date = m.date;
            }
            last_date = m.date.or(last_date);
            match fmt {
                "html" | "txt" => {
                    if let Some((p, w)) = page.as_mut() {
                        let s = if fmt == "html" {
                            html_message(&o)
                        } else {
                            txt_message(&o)
                        };
                        w.write_all(s.as_bytes()).at(p)?;
                    }
                }
                "csv" => {
                    if let Some((p, w)) = single.as_mut() {
                        w.write_all(csv_message(&conv, &o).as_bytes()).at(p)?;
                    }
                }
                _ => {
                    if let Some((p, w)) = single.as_mut() {
                        if count > 0 {
                            w.write_all(b",").at(p)?;
                        }
                        serde_json::to_writer(&mut *w, &o)?;
                    }
                }
            }
            count += 1;
            done += 1;
            report.records += 1;
            if done.is_multiple_of(1000) {
                progress(done, total);
            }
        }
        if let Some((p, mut w)) = page.take() {
            if fmt == "html" {
                w.write_all(b"</body></html>\n").at(&p)?;
            }
            finish(&p, w)?;
            report.files_written += 1;
            let file = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            index_rows.push((conv.name.clone(), file, count, first_date, last_date));
        }
        if fmt == "json"
            && let Some((p, w)) = single.as_mut()
        {
            w.write_all(b"]}").at(p)?;
        }
        report.groups += 1;
    }
    if let Some((p, mut w)) = single.take() {
        if fmt == "json" {
            w.write_all(b"\n]}\n").at(&p)?;
        }
        finish(&p, w)?;
        report.files_written += 1;
    }
    if fmt == "html" {
        let (p, mut w) = out.file("index.html")?;
        let mut s = page_head("Messages");
        s.push_str("<h1>Messages</h1><table><tr><th>Conversation</th><th>Messages</th><th>First</th><th>Last</th></tr>\n");
        for (name, file, count, first, last) in &index_rows {
            s.push_str(&format!(
                "<tr><td><a href=\"{}\">{}</a></td><td>{count}</td><td>{}</td><td>{}</td></tr>\n",
                html(&url_path(file)),
                html(name),
                first.map(human).unwrap_or_default(),
                last.map(human).unwrap_or_default()
            ));
        }
        s.push_str("</table></body></html>\n");
        w.write_all(s.as_bytes()).at(&p)?;
        finish(&p, w)?;
        report.files_written += 1;
    }
    ctx.finish_copies(&mut report);
    progress(done, total);
    Ok(report)
}
