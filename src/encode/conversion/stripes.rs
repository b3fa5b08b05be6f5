//! ORC stripes encoded apart from their file (`segments`): each segment has its own
//! `StripeEncoder` (a fresh column tree), and the staging thread writes the stripes in order,
//! the file summing their statistics.

use std::io::{self, Write};

use arrow_array::StructArray;

use super::segments::{Encoder, Part, PartSink};
use crate::encode::orc::{OrcFile, Stripe, StripeEncoder};

impl Part for Stripe {
    fn rows(&self) -> usize {
        Stripe::rows(self) as usize
    }
}

impl Encoder for StripeEncoder {
    type Part = Stripe;

    fn push(&mut self, rows: StructArray, done: &mut Vec<Stripe>) -> io::Result<()> {
        done.extend(StripeEncoder::push(self, &rows)?);
        Ok(())
    }

    fn end(&mut self, done: &mut Vec<Stripe>) -> io::Result<()> {
        done.extend(StripeEncoder::end(self)?);
        Ok(())
    }
}

impl<W: Write> PartSink<Stripe> for OrcFile<W> {
    fn write_part(&mut self, part: Stripe) -> io::Result<()> {
        self.write_stripe(part)
    }
}
