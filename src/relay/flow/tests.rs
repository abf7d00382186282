//! The inbox's order and bounds; the credit's grant steps.

use bytes::Bytes;

use super::{COALESCE, CONTROL_DEPTH, Inbox, Item, Owed, WINDOW};

fn data(n: usize, byte: u8) -> Bytes {
    Bytes::from(vec![byte; n])
}

#[tokio::test]
async fn small_packets_merge_and_order_is_kept() {
    let inbox = Inbox::<&str>::default();
    for _ in 0..1000 {
        inbox.data(None, data(1, b'a'));
    }
    inbox.try_push("eof").unwrap();
    inbox.data(Some(1), data(3, b'e'));
    inbox.end();
    let mut items = Vec::new();
    while let Some(item) = inbox.next().await {
        items.push(item);
    }
    assert!(
        matches!(&items[0], Item::Data(None, d) if d.len() == 1000 && d.iter().all(|b| *b == b'a'))
    );
    assert!(matches!(&items[1], Item::Other("eof")));
    assert!(matches!(&items[2], Item::Data(Some(1), d) if d.len() == 3));
    assert_eq!(items.len(), 3);
}

#[tokio::test]
async fn a_flood_of_tiny_packets_holds_few_chunks() {
    let inbox = Inbox::<()>::default();
    let total = 1 << 20;
    for _ in 0..total {
        inbox.data(None, data(1, 0));
    }
    let chunks = inbox.lock().items.len();
    assert!(
        chunks <= total / COALESCE + 1,
        "{chunks} chunks for {total} one-byte packets"
    );
}

#[tokio::test]
async fn full_packets_are_not_copied() {
    let inbox = Inbox::<()>::default();
    let packet = data(32 * 1024, 7);
    let ptr = packet.as_ptr();
    inbox.data(None, packet);
    match inbox.try_next() {
        Some(Item::Data(None, d)) => assert_eq!(d.as_ptr(), ptr),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn controls_are_bounded_and_room_comes_back() {
    let inbox = std::sync::Arc::new(Inbox::<usize>::default());
    for i in 0..CONTROL_DEPTH {
        inbox.try_push(i).unwrap();
    }
    assert_eq!(inbox.try_push(999), Err(999));
    let waiting = tokio::spawn({
        let inbox = inbox.clone();
        async move { inbox.push(CONTROL_DEPTH).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    assert!(matches!(inbox.next().await, Some(Item::Other(0))));
    waiting.await.unwrap();
    let mut last = None;
    while let Some(Item::Other(i)) = inbox.try_next() {
        last = Some(i);
    }
    assert_eq!(last, Some(CONTROL_DEPTH));
}

#[test]
fn window_is_granted_back_in_quarter_window_steps() {
    let mut owed = Owed::default();
    let packet = 32 * 1024;
    let mut grants = Vec::new();
    for _ in 0..2 * WINDOW as usize / packet {
        if let Some(amount) = owed.add(packet) {
            grants.push(amount);
        }
    }
    // Two windows written on in 32 KiB packets: eight grants of a quarter
    // window, not one per packet.
    assert_eq!(grants, vec![WINDOW / 4; 8]);
    assert_eq!(owed.add(0), None);
}

#[test]
fn a_grant_never_exceeds_the_window() {
    let mut owed = Owed::default();
    assert_eq!(owed.add(1), None);
    assert_eq!(owed.add(2 * WINDOW as usize), Some(WINDOW));
    // The rest goes with the next writes.
    assert_eq!(owed.add(0), Some(WINDOW));
    assert_eq!(owed.add(0), None);
}
