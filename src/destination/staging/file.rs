//! The staging file and what writes into it: a compressed byte stream or a Parquet/ORC
//! writer, the file closed while its object is suspended and opened again for appending.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::disk::{Patience, PatientFile};
use crate::encode::conversion::{Park, RowWriter};
use crate::encode::{Compression, Encoder};

/// What writes the open object: a compressed byte stream, or a Parquet file (format
/// conversion).
pub(super) enum Writer {
    Bytes(Encoder<BufWriter<PatientFile>>),
    Parquet(Box<RowWriter<StagingFile>>),
}

/// A staging file that can be closed while its object waits (a suspended partition) and is
/// opened again, for appending, on the next write.
pub(crate) struct StagingFile {
    pub(super) path: PathBuf,
    pub(super) file: Option<BufWriter<PatientFile>>,
    pub(super) patience: Arc<Patience>,
    pub(super) capacity: usize,
}

impl StagingFile {
    fn open(&mut self) -> io::Result<&mut BufWriter<PatientFile>> {
        if self.file.is_none() {
            let file = File::options().append(true).open(&self.path)?;
            let file = PatientFile::new(file, self.patience.clone());
            self.file = Some(BufWriter::with_capacity(self.capacity, file));
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(io::Error::other("staging file not open")),
        }
    }

    pub(super) fn into_file(self) -> io::Result<File> {
        match self.file {
            Some(f) => f
                .into_inner()
                .map(PatientFile::into_file)
                .map_err(|e| e.into_error()),
            None => File::options().append(true).open(&self.path),
        }
    }
}

impl Write for StagingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.open()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Park for StagingFile {
    fn park(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| e.into_error())?;
        }
        Ok(())
    }

    fn is_parked(&self) -> bool {
        self.file.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GzipMode {
    /// One deflate stream (error and backup objects).
    OneStream,
    /// Blocks on every core (a destination's main object: one object takes all the data).
    Parallel,
    /// No deflate state kept between writes (partitions: hundreds may be open at once).
    Lean,
}

impl GzipMode {
    pub(super) fn encoder<W: Write + std::io::Seek>(
        self,
        compression: Compression,
        out: W,
        entry_name_len: usize,
    ) -> io::Result<Encoder<W>> {
        match self {
            GzipMode::OneStream => Encoder::new(compression, out, entry_name_len),
            GzipMode::Parallel => Encoder::new_parallel(compression, out, entry_name_len),
            GzipMode::Lean => Encoder::new_lean(compression, out, entry_name_len),
        }
    }
}
