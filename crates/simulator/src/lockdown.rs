//! lockdownd on port 62078: values, sessions (TLS), and service start.
//!
//! Every reply echoes `Request` (libimobiledevice fails without it). After `StartSession`
//! the plaintext reply is followed by a TLS handshake in which the device presents its
//! certificate and asks for none (libimobiledevice sends the root certificate,
//! pymobiledevice3 and idevice the host certificate). After `StopSession` libimobiledevice
//! sends a TLS close_notify and may go on in plaintext, so both paths are served.
//!
//! Pairing is real: `StartSession` only accepts a HostID the phone trusts, `Pair` adds one
//! (after the simulated user's answer to "Trust This Computer?", [`crate::PairingMode`]),
//! `Unpair` removes it, and `DevicePublicKey` is an RSA key as on a phone.

use std::sync::Arc;
use std::time::Duration;

use iosnap_proto::plist_frame::PlistFormat;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::device::Device;
use crate::io::{BoxIo, read_plist, write_plist};
use crate::services::ServiceKind;

enum Next {
    Eof,
    StartTls,
    Stopped,
}

/// Serves one lockdown connection.
pub(crate) async fn serve(mut io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(dev.tls.clone());
    loop {
        match run(&mut io, &dev, false).await? {
            Next::Eof | Next::Stopped => return Ok(()),
            Next::StartTls => {
                let mut tls = acceptor.accept(io).await?;
                match run(&mut tls, &dev, true).await? {
                    Next::Stopped => {
                        // Wait for the client's close_notify, then go on in plaintext.
                        let mut b = [0u8; 1];
                        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut b)).await
                        {
                            Ok(Ok(0)) => io = tls.into_inner().0,
                            _ => return Ok(()),
                        }
                    }
                    Next::Eof | Next::StartTls => return Ok(()),
                }
            }
        }
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    dev: &Arc<Device>,
    in_tls: bool,
) -> std::io::Result<Next> {
    loop {
        let req = match read_plist(s).await {
            Ok(Some((plist::Value::Dictionary(d), _))) => d,
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(Next::Eof),
            // A peer that drops the connection without close_notify is normal.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Next::Eof),
            Err(e) => return Err(e),
        };
        let request = req
            .get("Request")
            .and_then(plist::Value::as_string)
            .unwrap_or_default()
            .to_string();
        let mut reply = plist::Dictionary::new();
        reply.insert("Request".into(), request.clone().into());
        let mut next = None;
        match request.as_str() {
            "QueryType" => {
                reply.insert("Type".into(), "com.apple.mobile.lockdown".into());
            }
            "GetValue" => {
                let domain = req.get("Domain").and_then(plist::Value::as_string);
                let key = req.get("Key").and_then(plist::Value::as_string);
                if let Some(d) = domain {
                    reply.insert("Domain".into(), d.into());
                }
                if let Some(k) = key {
                    reply.insert("Key".into(), k.into());
                }
                let value = match (domain, key) {
                    (None, Some("DevicePublicKey")) => {
                        Some(plist::Value::Data(dev.public_key().await?))
                    }
                    _ => dev.lockdown_value(domain, key),
                };
                match value {
                    Some(v) => {
                        reply.insert("Value".into(), v);
                    }
                    None => {
                        reply.insert("Error".into(), "MissingValue".into());
                    }
                }
            }
            "SetValue" | "RemoveValue" => {
                reply.insert("Result".into(), "Success".into());
            }
            "Pair" => match dev.pair_host(&req) {
                Ok(escrow) => {
                    reply.insert("EscrowBag".into(), plist::Value::Data(escrow));
                    reply.insert("Result".into(), "Success".into());
                }
                Err(error) => {
                    reply.insert("Error".into(), error.into());
                }
            },
            "ValidatePair" | "Unpair" => {
                let host = req
                    .get("PairRecord")
                    .and_then(plist::Value::as_dictionary)
                    .and_then(|r| r.get("HostID"))
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                let known = if request == "Unpair" {
                    dev.unpair_host(host)
                } else {
                    dev.trusts(host)
                };
                if known {
                    reply.insert("Result".into(), "Success".into());
                } else {
                    reply.insert("Error".into(), "InvalidHostID".into());
                }
            }
            "StartSession" => {
                let host = req
                    .get("HostID")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                if in_tls {
                    reply.insert("Error".into(), "SessionActive".into());
                } else if !dev.trusts(host) {
                    // What a phone answers a host it does not (or no longer) trust.
                    reply.insert("Error".into(), "InvalidHostID".into());
                } else {
                    reply.insert("SessionID".into(), dev.new_session_id().into());
                    reply.insert("EnableSessionSSL".into(), true.into());
                    next = Some(Next::StartTls);
                }
            }
            "StopSession" => {
                reply.insert("Result".into(), "Success".into());
                if in_tls {
                    next = Some(Next::Stopped);
                }
            }
            "StartService" => {
                let name = req
                    .get("Service")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                reply.insert("Service".into(), name.into());
                match ServiceKind::from_name(name) {
                    Some(kind) if in_tls => {
                        let port = dev.register_service(kind);
                        reply.insert("Port".into(), plist::Value::Integer(u64::from(port).into()));
                    }
                    Some(_) => {
                        reply.insert("Error".into(), "NoRunningSession".into());
                    }
                    None => {
                        reply.insert("Error".into(), "InvalidService".into());
                    }
                }
            }
            "Goodbye" => {
                reply.insert("Result".into(), "Success".into());
                next = Some(Next::Eof);
            }
            _ => {
                reply.insert("Error".into(), "InvalidRequest".into());
            }
        }
        write_plist(s, &plist::Value::Dictionary(reply), PlistFormat::Xml).await?;
        if let Some(n) = next {
            return Ok(n);
        }
    }
}
