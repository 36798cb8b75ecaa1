//! The changes the data table's stream carries, as the derivation reads them: what a backend's
//! feed (DynamoDB Streams, or the memory store's in-process feed) hands the stream function.

use super::Document;
use super::clicks::ClickRecord;

/// One change, with its place in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The partition key of the item that changed. Every change to items of one partition key
    /// reaches the stream in write order, in one shard at a time (a parent shard is read to its
    /// end before its children), so derived rows note what they counted per origin partition:
    /// stream shard ids appear nowhere in a Lambda event, and sequence numbers of different
    /// shards do not interleave in any order a mark could rely on.
    pub partition: String,
    /// The stream's sequence number (decimal digits, 1 to 40; compared as numbers), increasing
    /// for the changes of one partition key.
    pub sequence: String,
    pub change: Change,
}

/// What a change means to the derived data.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A click item was created (boxed: most changes are not clicks).
    NewClick(Box<ClickRecord>),
    /// A click item was replaced: its images before and after (the stream function's rescoring).
    ClickChanged {
        before: Box<ClickRecord>,
        after: Box<ClickRecord>,
    },
    /// A document was created (version 1).
    NewDocument(Box<Document>),
    /// Anything that derives nothing: other items, other updates, removals, and an insert
    /// without a full image (moto can emit a key-only `INSERT` before the real one).
    Other,
}

/// Sequence numbers as text that sorts as the numbers do: zero-padded to 40 digits.
pub fn sequence_order(sequence: &str) -> String {
    format!("{sequence:0>40}")
}
