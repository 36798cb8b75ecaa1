//! Newest-first paging across partitions: a lazy k-way merge that reads a few items from every
//! partition at once, refills only the partitions the page actually drains, and stops at
//! `limit + 1` kept items, so a page costs about `limit` items read, whatever the partition count.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::future::try_join_all;

use crate::store::Page;

/// How to page: the partition count, the inclusive upper bound of the range, the position the
/// previous page ended at (excluded), and the page size.
#[derive(Debug, Clone, Copy)]
pub struct MergePlan<'a> {
    pub partitions: usize,
    pub upper: &'a str,
    pub after_position: Option<&'a str>,
    pub limit: u32,
}

struct PartitionCursor<T> {
    buffered: VecDeque<(String, T)>,
    /// Inclusive upper bound of the next read: the key of the oldest item read so far.
    next_upper: String,
    exhausted: bool,
}

/// Items the first read asks of each partition: twice the even share of the `limit + 1` items a
/// page looks for, plus one for an item at the bound itself, and never more than one partition
/// alone could need. With 16 partitions and a page of 25 that is 5 each.
pub fn first_read_size(partitions: usize, limit: u32) -> u32 {
    let wanted = u64::from(limit) + 1;
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(u64::MAX);
    let share = (2 * wanted).div_ceil(partitions) + 1;
    u32::try_from(share.min(wanted + 1)).unwrap_or(u32::MAX)
}

/// Items a later read asks of a drained partition: what the page still lacks plus the bound, and
/// never fewer than the first read, so a selective filter does not page one item per round trip.
fn refill_read_size(partitions: usize, limit: u32, kept: usize) -> u32 {
    let limit_items = usize::try_from(limit).unwrap_or(usize::MAX);
    let lacking = limit_items.saturating_sub(kept).max(1);
    u32::try_from(lacking + 1)
        .unwrap_or(u32::MAX)
        .max(first_read_size(partitions, limit))
}

/// Pages newest first through `plan.partitions` partitions. `read(partition, upper, count)`
/// returns at most `count` of that partition's items with sort key `<= upper`, newest first.
/// Only items that `keep` accepts are returned. The page's position is the sort key of its last
/// item; the next page passes it as `after_position`.
///
/// Before each item is taken, every partition that may hold more has at least one item buffered,
/// so the item taken is the newest left anywhere: pages have no duplicates or gaps. A full page
/// carries a position whenever anything may follow it; rarely (the page ended exactly at the end
/// of the data, or a filter matches nothing further) the next page is then empty, with no
/// position.
pub async fn merge_newest_first<T, E, Read, ReadFuture>(
    plan: MergePlan<'_>,
    sort_key: impl Fn(&T) -> String,
    keep: impl Fn(&T) -> bool,
    read: Read,
) -> Result<Page<T>, E>
where
    Read: Fn(usize, String, u32) -> ReadFuture,
    ReadFuture: Future<Output = Result<Vec<T>, E>>,
{
    let limit = usize::try_from(plan.limit).unwrap_or(usize::MAX).max(1);
    // A page never reads more than `limit + 2` items per partition (what reading every partition
    // in full would cost); with a selective `keep` it stops there and returns a short page with a
    // position, as a DynamoDB filter expression would.
    let budget = plan.partitions.saturating_mul(limit.saturating_add(2));
    let mut cursors: Vec<PartitionCursor<T>> = (0..plan.partitions)
        .map(|_| PartitionCursor {
            buffered: VecDeque::new(),
            next_upper: plan.upper.to_owned(),
            exhausted: false,
        })
        .collect();
    let mut read_so_far = 0usize;
    let mut kept: Vec<(String, T)> = Vec::with_capacity(limit + 1);
    // Items are taken in strictly decreasing key order: everything at or above this key has been
    // seen, everything not yet taken is below it.
    let mut last_taken: Option<String> = None;
    let mut next_read_size = first_read_size(plan.partitions, plan.limit);

    while kept.len() < limit {
        let to_refill: Vec<usize> = cursors
            .iter()
            .enumerate()
            .filter(|(_, cursor)| cursor.buffered.is_empty() && !cursor.exhausted)
            .map(|(index, _)| index)
            .collect();
        if !to_refill.is_empty() {
            // Each drained partition needs at least two items (the bound and one more) to move.
            let per_partition_left = budget.saturating_sub(read_so_far) / to_refill.len();
            if per_partition_left < 2 && last_taken.is_some() {
                let items = kept.into_iter().map(|(_, item)| item).collect();
                return Ok(Page {
                    items,
                    next_position: last_taken,
                });
            }
            let read_size =
                next_read_size.min(u32::try_from(per_partition_left).unwrap_or(u32::MAX));
            let reads = to_refill.iter().map(|&partition| {
                read(partition, cursors[partition].next_upper.clone(), read_size)
            });
            let results = try_join_all(reads).await?;
            let requested = usize::try_from(read_size).unwrap_or(usize::MAX);
            for (partition, items) in to_refill.into_iter().zip(results) {
                read_so_far += items.len();
                let cursor = &mut cursors[partition];
                cursor.exhausted = items.len() < requested;
                for item in items {
                    let key = sort_key(&item);
                    // Ranges include their bounds: skip the previous page's last item and, on a
                    // refill, the item the bound was taken from.
                    let seen = plan.after_position == Some(key.as_str())
                        || last_taken
                            .as_deref()
                            .is_some_and(|taken| key.as_str() >= taken);
                    if !seen {
                        cursor.buffered.push_back((key, item));
                    }
                }
                if let Some((key, _)) = cursor.buffered.back() {
                    cursor.next_upper.clone_from(key);
                }
            }
            next_read_size = refill_read_size(plan.partitions, plan.limit, kept.len());
            continue;
        }
        let newest = cursors
            .iter()
            .enumerate()
            .filter_map(|(index, cursor)| cursor.buffered.front().map(|(key, _)| (index, key)))
            .max_by(|a, b| a.1.cmp(b.1))
            .map(|(index, _)| index);
        let Some((key, item)) = newest.and_then(|index| cursors[index].buffered.pop_front()) else {
            // Every partition is exhausted: this is the last page.
            return Ok(page_of(kept, limit, false));
        };
        last_taken = Some(key.clone());
        if keep(&item) {
            kept.push((key, item));
        }
    }
    // The page is full: more may follow if anything is buffered or a partition has more unread.
    let more = cursors
        .iter()
        .any(|cursor| !cursor.buffered.is_empty() || !cursor.exhausted);
    Ok(page_of(kept, limit, more))
}

/// The first `limit` kept items; the position is the last one's key when more follow.
fn page_of<T>(mut kept: Vec<(String, T)>, limit: usize, more: bool) -> Page<T> {
    kept.truncate(limit);
    let next_position = if more {
        kept.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Page {
        items: kept.into_iter().map(|(_, item)| item).collect(),
        next_position,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use futures_util::FutureExt;

    use super::*;

    /// A seeded xorshift64 sequence: the same pseudo-random data on every run, no extra crate.
    pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// What a partition read returns: items with key <= upper, newest first, at most `count`.
    fn read(partition: &[String], upper: &str, count: u32) -> Vec<String> {
        let mut items: Vec<String> = partition
            .iter()
            .filter(|key| key.as_str() <= upper)
            .cloned()
            .collect();
        items.sort_by(|a, b| b.cmp(a));
        items.truncate(count as usize);
        items
    }

    /// Paging with any filter, any limit and any partition count returns exactly the filtered
    /// items, newest first, each once, checked against a brute-force answer on pseudo-random data.
    #[test]
    fn merged_pages_match_a_brute_force_listing() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let partition_count = 1 + (next() % 17) as usize;
            let mut partitions = vec![Vec::new(); partition_count];
            for index in 0..(next() % 120) {
                let key = format!("{:013}#{index:04}", next() % 50);
                partitions[(next() as usize) % partition_count].push(key);
            }
            let modulus = 1 + next() % 4;
            let keep =
                |key: &String| u64::from(key.as_bytes()[key.len() - 1]).is_multiple_of(modulus);
            let limit = 1 + (next() % 30) as u32;
            let mut expected: Vec<String> = partitions
                .iter()
                .flatten()
                .filter(|k| keep(k))
                .cloned()
                .collect();
            expected.sort_by(|a, b| b.cmp(a));

            let mut seen = Vec::new();
            let mut position: Option<String> = None;
            for _ in 0..1_000 {
                let upper = position.clone().unwrap_or_else(|| "~".into());
                let items_read = Cell::new(0usize);
                let read_calls = Cell::new(0usize);
                let plan = MergePlan {
                    partitions: partition_count,
                    upper: &upper,
                    after_position: position.as_deref(),
                    limit,
                };
                let page =
                    merge_newest_first(plan, String::clone, keep, |partition, upper, count| {
                        let items = read(&partitions[partition], &upper, count);
                        items_read.set(items_read.get() + items.len());
                        read_calls.set(read_calls.get() + 1);
                        std::future::ready(Ok::<_, ()>(items))
                    })
                    .now_or_never()
                    .expect("reads are ready at once")
                    .expect("reads do not fail");
                assert!(page.items.len() <= limit as usize);
                // Every read after the first round brings at least first_read_size - 1 new items
                // (or exhausts its partition), so the reads of a page stay few.
                let per_read = first_read_size(partition_count, limit).max(2) as usize - 1;
                assert!(
                    read_calls.get()
                        <= 2 * partition_count + partition_count * (limit as usize + 2) / per_read,
                    "round {round}: {} reads",
                    read_calls.get()
                );
                assert!(
                    items_read.get() <= partition_count * (limit as usize + 2),
                    "a page's reads stay bounded"
                );
                seen.extend(page.items);
                match page.next_position {
                    Some(next_position) => {
                        assert!(
                            position.as_ref().is_none_or(|p| &next_position < p),
                            "progress"
                        );
                        position = Some(next_position);
                    }
                    None => break,
                }
            }
            assert_eq!(seen, expected, "round {round}");
        }
    }

    /// Without a filter, a page of 25 over 16 evenly filled partitions reads about the page, not
    /// 16 times the page.
    #[test]
    fn an_unfiltered_page_reads_about_its_own_size() {
        let partitions: Vec<Vec<String>> = (0..16)
            .map(|partition| {
                (0..100)
                    .map(|index| format!("{:013}#{partition:02}", index * 16 + partition))
                    .collect()
            })
            .collect();
        let items_read = Cell::new(0usize);
        let plan = MergePlan {
            partitions: 16,
            upper: "~",
            after_position: None,
            limit: 25,
        };
        let page = merge_newest_first(
            plan,
            String::clone,
            |_| true,
            |partition, upper, count| {
                let items = read(&partitions[partition], &upper, count);
                items_read.set(items_read.get() + items.len());
                std::future::ready(Ok::<_, ()>(items))
            },
        )
        .now_or_never()
        .unwrap()
        .unwrap();
        assert_eq!(page.items.len(), 25);
        assert_eq!(page.items[0], format!("{:013}#15", 99 * 16 + 15));
        assert_eq!(items_read.get(), 16 * first_read_size(16, 25) as usize);
        assert_eq!(first_read_size(16, 25), 5);
        assert_eq!(first_read_size(1, 25), 27);
    }
}
