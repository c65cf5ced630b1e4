//! The one printer of the listing commands (`events`, `jobs`, `flags`): one JSON object per line
//! with `--json`, else aligned columns under a header, or a line saying there is nothing.

use anyhow::Context;
use serde::Serialize;

use crate::outln;

/// A column: its header and how its cells are padded.
pub struct Column {
    pub header: &'static str,
    pub align: Align,
}

pub enum Align {
    Left(usize),
    Right(usize),
    /// The last column: not padded.
    Rest,
}

impl Column {
    pub const fn left(header: &'static str, width: usize) -> Column {
        Column {
            header,
            align: Align::Left(width),
        }
    }

    pub const fn right(header: &'static str, width: usize) -> Column {
        Column {
            header,
            align: Align::Right(width),
        }
    }

    pub const fn rest(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Rest,
        }
    }

    fn pad(&self, cell: &str) -> String {
        match self.align {
            Align::Left(w) => format!("{cell:<w$}"),
            Align::Right(w) => format!("{cell:>w$}"),
            Align::Rest => cell.to_string(),
        }
    }
}

/// How one kind of item is listed.
pub struct Listing<'a, T> {
    /// What an item is, for errors ("an event").
    pub item: &'a str,
    /// What is printed when there is nothing to list.
    pub empty: &'a str,
    pub columns: &'a [Column],
    /// One cell per column.
    pub cells: fn(&T) -> Vec<String>,
    /// An extra line under a row, if any (printed as is).
    pub note: fn(&T) -> Option<String>,
}

/// Lays out one row: cells padded to their column, two spaces apart.
pub fn row(columns: &[Column], cells: &[String]) -> String {
    columns
        .iter()
        .zip(cells)
        .map(|(c, cell)| c.pad(cell))
        .collect::<Vec<_>>()
        .join("  ")
}

impl<T: Serialize> Listing<'_, T> {
    /// Prints `items` as JSON lines or as a table.
    pub fn print(&self, items: &[T], json: bool) -> anyhow::Result<()> {
        if json {
            for i in items {
                let line =
                    serde_json::to_string(i).with_context(|| format!("printing {}", self.item))?;
                outln!("{line}")?;
            }
            return Ok(());
        }
        if items.is_empty() {
            outln!("{}", self.empty)?;
            return Ok(());
        }
        let header: Vec<String> = self.columns.iter().map(|c| c.header.to_string()).collect();
        outln!("{}", row(self.columns, &header))?;
        for i in items {
            outln!("{}", row(self.columns, &(self.cells)(i)))?;
            if let Some(note) = (self.note)(i) {
                outln!("{note}")?;
            }
        }
        Ok(())
    }
}

/// No extra line under rows.
pub fn no_note<T>(_: &T) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_padded_like_format_widths() {
        let columns = [
            Column::right("ID", 6),
            Column::left("STATUS", 9),
            Column::rest("LAST"),
        ];
        let cells = ["7".to_string(), "dead".to_string(), "boom".to_string()];
        assert_eq!(
            row(&columns, &cells),
            format!("{:>6}  {:<9}  {}", "7", "dead", "boom")
        );
    }
}
