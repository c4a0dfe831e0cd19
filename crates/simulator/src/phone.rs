//! The phone the simulator serves: the synthetic phone of `iosnap-phone`, re-exported so
//! users of the simulator configure devices without depending on that crate directly.

pub use iosnap_phone::{App, Phone, PhoneError, PhoneFile, PhoneSpec};
