//! 3.5" floppy disks for the Mac Plus's IWM: the GCR recording, track layout, image files and
//! the Sony drive mechanism.

pub mod gcr;
pub mod image;
pub mod sony;
pub mod track;

pub use image::{FloppyImage, ImageFormat};
