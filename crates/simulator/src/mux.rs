//! The usbmuxd front end: device listing, pair records, and `Connect`, which turns the
//! client's socket into a byte pipe to lockdownd (port 62078) or to a started service.
//!
//! Replies are XML plists with the request's tag echoed (libusbmuxd parses XML only;
//! pymobiledevice3 checks tags). Each accepted socket is served on its own task.

use std::sync::Arc;

use iosnap_proto::usbmux::{self, ResultCode, VERSION_PLIST, port_from_wire, result_message};

use crate::device::Device;
use crate::io::{BoxIo, dict, read_mux_packet, write_mux_plist};
use crate::{LOCKDOWN_PORT, config::ConnectionType, lockdown, services};

/// The shared view every mux connection gets: the devices and the host-wide BUID.
pub(crate) struct Mux {
    pub(crate) devices: Vec<Arc<Device>>,
    pub(crate) buid: String,
}

fn attached(dev: &Device) -> plist::Value {
    let id = plist::Value::Integer(u64::from(dev.device_id).into());
    let props = match dev.connection {
        ConnectionType::Usb => dict([
            (
                "ConnectionSpeed",
                plist::Value::Integer(480_000_000u64.into()),
            ),
            ("ConnectionType", "USB".into()),
            ("DeviceID", id.clone()),
            (
                "LocationID",
                plist::Value::Integer(u64::from(dev.device_id).into()),
            ),
            ("ProductID", plist::Value::Integer(0x12a8u64.into())),
            ("SerialNumber", dev.identity.udid.clone().into()),
            ("USBSerialNumber", dev.identity.udid.clone().into()),
        ]),
        ConnectionType::Network => dict([
            ("ConnectionType", "Network".into()),
            ("DeviceID", id.clone()),
            (
                "EscapedFullServiceName",
                format!(
                    "{}@fe80::1._apple-mobdev2._tcp.local.",
                    dev.identity.wifi_mac
                )
                .into(),
            ),
            ("InterfaceIndex", plist::Value::Integer(1u64.into())),
            (
                "NetworkAddress",
                plist::Value::Data(vec![
                    0x10, 0x02, 0xf2, 0x7e, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                ]),
            ),
            ("SerialNumber", dev.identity.udid.clone().into()),
        ]),
    };
    plist::Value::Dictionary(dict([
        ("MessageType", "Attached".into()),
        ("DeviceID", id),
        ("Properties", plist::Value::Dictionary(props)),
    ]))
}

impl Mux {
    fn by_udid(&self, udid: &str) -> Option<&Arc<Device>> {
        self.devices
            .iter()
            .find(|d| d.identity.udid.eq_ignore_ascii_case(udid))
    }

    fn by_id(&self, id: u64) -> Option<&Arc<Device>> {
        self.devices.iter().find(|d| u64::from(d.device_id) == id)
    }
}

/// Serves one client socket until it closes or becomes a device pipe.
pub(crate) async fn serve(mut io: BoxIo, mux: Arc<Mux>) -> std::io::Result<()> {
    loop {
        let Some(pkt) = read_mux_packet(&mut io).await? else {
            return Ok(());
        };
        let tag = pkt.header.tag;
        if pkt.header.version != VERSION_PLIST || pkt.header.message != usbmux::message::PLIST {
            write_mux_plist(&mut io, tag, &result_message(ResultCode::BadVersion)).await?;
            continue;
        }
        let Ok(req) = pkt.plist() else {
            write_mux_plist(&mut io, tag, &result_message(ResultCode::BadCommand)).await?;
            continue;
        };
        let kind = req
            .get("MessageType")
            .and_then(plist::Value::as_string)
            .unwrap_or_default();
        match kind {
            "ListDevices" => {
                let list = mux.devices.iter().map(|d| attached(d)).collect();
                let reply = dict([("DeviceList", plist::Value::Array(list))]);
                write_mux_plist(&mut io, tag, &plist::Value::Dictionary(reply)).await?;
            }
            "Listen" => {
                write_mux_plist(&mut io, tag, &result_message(ResultCode::Ok)).await?;
                for d in &mux.devices {
                    write_mux_plist(&mut io, 0, &attached(d)).await?;
                }
                // The client only listens from now on; wait for it to hang up.
                let mut sink = [0u8; 256];
                loop {
                    if tokio::io::AsyncReadExt::read(&mut io, &mut sink).await? == 0 {
                        return Ok(());
                    }
                }
            }
            "ReadBUID" => {
                let reply = dict([("BUID", mux.buid.clone().into())]);
                write_mux_plist(&mut io, tag, &plist::Value::Dictionary(reply)).await?;
            }
            "ReadPairRecord" => {
                let id = req
                    .get("PairRecordID")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                match mux.by_udid(id).and_then(|d| d.mux_record()) {
                    Some(record) => {
                        let reply = dict([("PairRecordData", plist::Value::Data(record))]);
                        write_mux_plist(&mut io, tag, &plist::Value::Dictionary(reply)).await?;
                    }
                    // usbmuxd answers a missing record (unknown device or not paired) with
                    // result 2, as ENOENT.
                    None => {
                        write_mux_plist(&mut io, tag, &result_message(ResultCode::BadDevice))
                            .await?
                    }
                }
            }
            "SavePairRecord" => {
                let id = req
                    .get("PairRecordID")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                let data = req
                    .get("PairRecordData")
                    .and_then(plist::Value::as_data)
                    .filter(|d| {
                        plist::Value::from_reader(std::io::Cursor::new(d))
                            .is_ok_and(|v| v.as_dictionary().is_some())
                    });
                let code = match (mux.by_udid(id), data) {
                    (Some(dev), Some(data)) => match dev.save_mux_record(data.to_vec()) {
                        Ok(()) => ResultCode::Ok,
                        Err(_) => ResultCode::BadCommand,
                    },
                    (None, _) => ResultCode::BadDevice,
                    (Some(_), None) => ResultCode::BadCommand,
                };
                write_mux_plist(&mut io, tag, &result_message(code)).await?;
            }
            "DeletePairRecord" => {
                let id = req
                    .get("PairRecordID")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default();
                let code = match mux.by_udid(id).map(|d| d.delete_mux_record()) {
                    Some(Ok(true)) => ResultCode::Ok,
                    Some(Ok(false)) | None => ResultCode::BadDevice,
                    Some(Err(_)) => ResultCode::BadCommand,
                };
                write_mux_plist(&mut io, tag, &result_message(code)).await?;
            }
            "ListListeners" => {
                let reply = dict([("ListenerList", plist::Value::Array(Vec::new()))]);
                write_mux_plist(&mut io, tag, &plist::Value::Dictionary(reply)).await?;
            }
            "Connect" => {
                let id = req
                    .get("DeviceID")
                    .and_then(plist::Value::as_unsigned_integer)
                    .unwrap_or(0);
                let wire = req
                    .get("PortNumber")
                    .and_then(plist::Value::as_unsigned_integer)
                    .unwrap_or(0);
                let Some(dev) = mux.by_id(id).cloned() else {
                    write_mux_plist(&mut io, tag, &result_message(ResultCode::BadDevice)).await?;
                    continue;
                };
                let port = port_from_wire(u16::try_from(wire).unwrap_or(0));
                if port == LOCKDOWN_PORT {
                    write_mux_plist(&mut io, tag, &result_message(ResultCode::Ok)).await?;
                    return lockdown::serve(io, dev).await;
                }
                match dev.take_service(port) {
                    Some(kind) => {
                        write_mux_plist(&mut io, tag, &result_message(ResultCode::Ok)).await?;
                        return services::serve(kind, io, dev).await;
                    }
                    None => {
                        write_mux_plist(&mut io, tag, &result_message(ResultCode::ConnRefused))
                            .await?
                    }
                }
            }
            _ => write_mux_plist(&mut io, tag, &result_message(ResultCode::BadCommand)).await?,
        }
    }
}
