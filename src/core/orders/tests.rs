use std::collections::HashMap;

use super::*;
use crate::core::io::Outbox;

type Out = Outbox<()>;
const URL: &str = "http://o/api";

fn intent(product: &str, key: &str) -> Intent {
    Intent {
        cue_id: "c1".into(),
        product_id: product.into(),
        quantity: 1,
        shown_at: ServerTime::new(1_000.0),
        tapped_at: ServerTime::new(1_800.0),
        latency_ms: 2_400.0,
        user_token: "tok".into(),
        key: key.into(),
    }
}

fn drain(out: &mut Out) -> Vec<Output<()>> {
    core::iter::from_fn(|| out.pop()).collect()
}

fn fetches(outs: &[Output<()>]) -> Vec<Request> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Fetch(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn one_fetch(out: &mut Out) -> Request {
    let f = fetches(&drain(out));
    assert_eq!(f.len(), 1, "{f:?}");
    f[0].clone()
}

fn header<'r>(r: &'r Request, name: &str) -> Option<&'r str> {
    r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn at(ms: f64) -> Instant {
    Instant::new(ms)
}

/// Buys and lets the write and the lock succeed: the POST that follows.
fn bought(c: &mut OrderClient, out: &mut Out, product: &str, key: &str) -> Request {
    c.buy(out, at(0.0), intent(product, key)).unwrap();
    drain(out);
    c.handle_storage(out, at(0.0), StorageResult::Stored { key: format!("{PREFIX}{key}") });
    c.handle_tab(out, at(0.0), TabEvent::Acquired { lock: format!("{PREFIX}{product}") });
    one_fetch(out)
}

fn answer(
    c: &mut OrderClient,
    out: &mut Out,
    now: f64,
    id: RequestId,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) {
    let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    c.handle_head(at(now), id, ResponseHead { status, headers });
    c.handle_chunk(id, body.as_bytes());
    c.handle_end(out, at(now), id, Ok(()));
}

fn events(c: &mut OrderClient) -> Vec<OrderUpdate> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

fn last_status(c: &mut OrderClient) -> OrderResult {
    events(c).pop().expect("an update").result
}

fn network_error() -> PlayerError {
    PlayerError::Network { url: URL.into(), reason: "offline".into() }
}

#[test]
fn the_intent_is_written_down_before_the_first_send() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    let id = c.buy(&mut out, at(0.0), intent("p1", "k1")).unwrap();
    let outs = drain(&mut out);
    assert!(matches!(&outs[0], Output::Storage(StorageOp::Put { key, .. }) if key == "liveshop.order.k1"));
    assert!(matches!(&outs[1], Output::Tab(TabOp::Acquire { lock }) if lock == "liveshop.order.p1"));
    assert!(fetches(&outs).is_empty());
    // The lock alone is not enough: the write must be done.
    c.handle_tab(&mut out, at(5.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    assert!(fetches(&drain(&mut out)).is_empty());
    c.handle_storage(&mut out, at(9.0), StorageResult::Stored { key: "liveshop.order.k1".into() });
    let r = one_fetch(&mut out);
    assert_eq!((r.kind, r.method, r.url.as_str()), (RequestKind::Api, Method::Post, "http://o/api/orders"));
    assert_eq!(header(&r, "Idempotency-Key"), Some("k1"));
    assert_eq!(header(&r, "Authorization"), Some("Bearer tok"));
    assert_eq!(header(&r, "Content-Type"), Some("application/json"));
    let body = String::from_utf8(r.body.unwrap()).unwrap();
    assert_eq!(
        body,
        r#"{"cueId":"c1","productId":"p1","quantity":1,"shownAtMs":1000,"tappedAtMs":1800,"latencyMs":2400}"#
    );
    let first = &events(&mut c)[0];
    assert_eq!((first.intent, first.result.status, first.result.attempts), (id, OrderStatus::Pending, 0));
}

#[test]
fn the_body_escapes_any_text_it_carries() {
    let mut i = intent("p\"1\\\n", "k");
    i.cue_id = "é\u{1}".into();
    let v = parse_json(order_body(&i).as_bytes()).unwrap();
    assert_eq!(v.str_field("productId"), Some("p\"1\\\n"));
    assert_eq!(v.str_field("cueId"), Some("é\u{1}"));
}

#[test]
fn a_crash_between_the_write_and_the_answer_resumes_with_the_same_key_and_body() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    c.buy(&mut out, at(0.0), intent("p1", "k1")).unwrap();
    let Some(Output::Storage(StorageOp::Put { key, value })) = out.pop() else { panic!() };
    drain(&mut out);
    c.handle_storage(&mut out, at(0.0), StorageResult::Stored { key: key.clone() });
    c.handle_tab(&mut out, at(0.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    let first = one_fetch(&mut out);
    drop(c); // the page crashed, the answer never came

    let (mut c, mut out) = (OrderClient::new(URL.into(), 2), Out::default());
    c.resume(&mut out, at(0.0));
    assert_eq!(drain(&mut out), [Output::Storage(StorageOp::List { prefix: "liveshop.order.".into() })]);
    let listed = StorageResult::Listed { prefix: PREFIX.into(), entries: vec![(key.clone(), value)] };
    c.handle_storage(&mut out, at(1.0), listed);
    assert_eq!(drain(&mut out), [Output::Tab(TabOp::Acquire { lock: "liveshop.order.p1".into() })]);
    assert_eq!(last_status(&mut c).status, OrderStatus::Pending);
    c.handle_tab(&mut out, at(2.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    let again = one_fetch(&mut out);
    assert_eq!(header(&again, "Idempotency-Key"), Some("k1"));
    assert_eq!(again.body, first.body);
    assert_eq!(header(&again, "Authorization"), Some("Bearer tok"));

    answer(&mut c, &mut out, 3.0, again.id, 200, &[], r#"{"status":"won","orderId":"o7"}"#);
    let outs = drain(&mut out);
    assert!(outs.contains(&Output::Tab(TabOp::Release { lock: "liveshop.order.p1".into() })));
    let r = last_status(&mut c);
    // Attempts count the POSTs of this page.
    assert_eq!((r.status, r.order_id.as_deref(), r.attempts), (OrderStatus::Won, Some("o7"), 1));

    // The decision is kept in place of the intent: a page reloaded before it heard the answer
    // shows it, sends nothing, and forgets it.
    let decided = outs.iter().find_map(|o| match o {
        Output::Storage(StorageOp::Put { key: k, value }) if *k == key => Some(value.clone()),
        _ => None,
    });
    let decided = decided.expect("the decision stored under the intent's key");
    let (mut c, mut out) = (OrderClient::new(URL.into(), 3), Out::default());
    c.resume(&mut out, at(0.0));
    drain(&mut out);
    let listed = StorageResult::Listed { prefix: PREFIX.into(), entries: vec![(key.clone(), decided)] };
    c.handle_storage(&mut out, at(1.0), listed);
    assert_eq!(drain(&mut out), [Output::Storage(StorageOp::Delete { key })]);
    let r = last_status(&mut c);
    assert_eq!((r.status, r.order_id.as_deref()), (OrderStatus::Won, Some("o7")));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn failures_are_retried_with_full_jitter_and_the_servers_retry_after_wins() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 42), Out::default());
    let mut r = bought(&mut c, &mut out, "p1", "k1");
    let body = r.body.clone();
    let mut now = 0.0;
    // (failure, the window its wait is drawn from, or the server's exact wait). Four in a row
    // is what the budget allows. A server that answered did not take the order: POST again.
    type Case<'a> = (u16, &'a [(&'a str, &'a str)], f64, bool);
    let cases: [Case; 4] = [
        (500, &[], 250.0, false),
        (503, &[], 500.0, false),
        (429, &[("retry-after", "3")], 3000.0, true),
        // An HTTP date is not read: the jitter decides.
        (409, &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")], 2000.0, false),
    ];
    for (status, headers, window, exact) in cases {
        answer(&mut c, &mut out, now, r.id, status, headers, "");
        let deadline = c.poll_timeout().expect("a retry");
        assert_eq!(deadline.reason, TimerReason::Order);
        let wait = deadline.at - at(now);
        if exact {
            assert_eq!(wait, window, "HTTP {status}");
        } else {
            assert!((0.0..window).contains(&wait), "HTTP {status}: {wait} not within {window}");
        }
        if wait >= 1.0 {
            c.handle_timeout(&mut out, at(now + wait - 1.0));
            assert!(fetches(&drain(&mut out)).is_empty());
        }
        now += wait;
        c.handle_timeout(&mut out, at(now));
        r = one_fetch(&mut out);
        assert_eq!((r.method, header(&r, "Idempotency-Key"), &r.body), (Method::Post, Some("k1"), &body));
    }
}

#[test]
fn client_errors_are_final_and_typed() {
    let cases = [
        (400, OrderStatus::Rejected, "order_refused"),
        (404, OrderStatus::Rejected, "order_refused"),
        (422, OrderStatus::Rejected, "order_refused"),
        (401, OrderStatus::Error, "order_unauthorized"),
        (403, OrderStatus::Error, "order_unauthorized"),
    ];
    for (status, expected, code) in cases {
        let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
        let r = bought(&mut c, &mut out, "p1", "k1");
        answer(&mut c, &mut out, 10.0, r.id, status, &[("retry-after", "1")], "{}");
        let outs = drain(&mut out);
        // A refusal is kept for a reloaded page to show, like any decision; an error is not.
        let kept =
            outs.iter().any(|o| matches!(o, Output::Storage(StorageOp::Put { key, .. }) if key == "liveshop.order.k1"));
        let deleted = outs.contains(&Output::Storage(StorageOp::Delete { key: "liveshop.order.k1".into() }));
        assert_eq!((kept, deleted), (expected == OrderStatus::Rejected, expected == OrderStatus::Error), "{outs:?}");
        assert!(fetches(&outs).is_empty());
        assert_eq!(c.poll_timeout(), None, "HTTP {status} retried");
        let result = last_status(&mut c);
        assert_eq!(result.status, expected);
        assert_eq!(result.error.map(|e| e.code()), Some(code));
    }
}

#[test]
fn the_retry_budget_turns_a_stampede_into_a_slow_lane_and_orders_end_said_never_dropped() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 3), Out::default());
    let mut in_flight: Vec<RequestId> =
        (0..30).map(|i| bought(&mut c, &mut out, &format!("p{i}"), &format!("k{i}")).id).collect();
    // (instant, order) of every POST after the first round.
    let mut retries: Vec<f64> = Vec::new();
    let mut now = 0.0;
    while !in_flight.is_empty() || c.poll_timeout().is_some() {
        for id in in_flight.drain(..) {
            answer(&mut c, &mut out, now, id, 503, &[], "");
        }
        drain(&mut out);
        let Some(d) = c.poll_timeout() else { break };
        now = d.at.get();
        c.handle_timeout(&mut out, d.at);
        in_flight = fetches(&drain(&mut out)).iter().map(|r| r.id).collect();
        retries.extend(in_flight.iter().map(|_| now));
    }
    // Four fast retries in all before the budget runs dry; then each order tries at most once
    // every 4 s: a page's load from a failing server is bounded by its orders, not multiplied.
    assert_eq!(retries.iter().filter(|t| **t < retry::CAP_MS).count(), 4, "{retries:?}");
    let per_order_per_s = retries.len() as f64 / 30.0 / (now / 1000.0);
    assert!(per_order_per_s <= 1.0 / 4.0, "{per_order_per_s} tries a second per order");
    // Each was tried until GIVE_UP_AFTER_MS, then said to have failed.
    assert!((GIVE_UP_AFTER_MS..GIVE_UP_AFTER_MS + 2.0 * retry::CAP_MS).contains(&now), "{now}");
    let results: Vec<OrderResult> = (1..=30).map(|i| c.result(i).unwrap()).collect();
    assert!(results
        .iter()
        .all(|r| r.status == OrderStatus::Error && r.error.as_ref().unwrap().code() == "order_gave_up"));
    // The record stays: buying again sends the same key.
    c.buy(&mut out, at(now), intent("p0", "another")).unwrap();
    c.handle_tab(&mut out, at(now), TabEvent::Acquired { lock: "liveshop.order.p0".into() });
    let r = one_fetch(&mut out);
    assert_eq!(header(&r, "Idempotency-Key"), Some("k0"));
}

#[test]
fn an_accepted_order_is_followed_at_the_servers_pace() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    let r = bought(&mut c, &mut out, "p1", "k1");
    events(&mut c);
    answer(
        &mut c,
        &mut out,
        100.0,
        r.id,
        202,
        &[],
        r#"{"orderId":"o1","attemptUrl":"/api/orders/o1/attempt","retryAfterMs":700}"#,
    );
    assert!(fetches(&drain(&mut out)).is_empty());
    assert_eq!(last_status(&mut c).order_id.as_deref(), Some("o1"));
    assert_eq!(c.poll_timeout().unwrap().at, at(800.0));
    c.handle_timeout(&mut out, at(799.0));
    assert!(fetches(&drain(&mut out)).is_empty());
    c.handle_timeout(&mut out, at(800.0));
    let poll = one_fetch(&mut out);
    assert_eq!((poll.method, poll.url.as_str()), (Method::Get, "http://o/api/orders/o1/attempt"));
    assert_eq!(header(&poll, "Authorization"), Some("Bearer tok"));
    // Retry-After beats the body's interval.
    answer(&mut c, &mut out, 850.0, poll.id, 202, &[("retry-after", "2")], r#"{"orderId":"o1","retryAfterMs":700}"#);
    assert_eq!(c.poll_timeout().unwrap().at, at(2850.0));
    c.handle_timeout(&mut out, at(2850.0));
    let poll = one_fetch(&mut out);
    assert_eq!(poll.method, Method::Get);
    answer(&mut c, &mut out, 2900.0, poll.id, 200, &[], r#"{"status":"sold_out","orderId":"o1"}"#);
    let r = last_status(&mut c);
    assert_eq!((r.status, r.order_id.as_deref(), r.attempts), (OrderStatus::SoldOut, Some("o1"), 1));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_second_tab_joins_through_the_broadcast_and_never_sends_its_own() {
    let (mut a, mut out_a) = (OrderClient::new(URL.into(), 1), Out::default());
    let (mut b, mut out_b) = (OrderClient::new(URL.into(), 2), Out::default());
    let broadcasts = |outs: &[Output<()>]| -> Vec<Vec<u8>> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Tab(TabOp::Broadcast { message }) => Some(message.clone()),
                _ => None,
            })
            .collect()
    };
    let bid = b.buy(&mut out_b, at(0.0), intent("p1", "kb")).unwrap();
    b.handle_storage(&mut out_b, at(1.0), StorageResult::Stored { key: "liveshop.order.kb".into() });
    // Tab A holds the lock; it tells the others what it sends.
    a.buy(&mut out_a, at(0.0), intent("p1", "ka")).unwrap();
    drain(&mut out_a);
    a.handle_storage(&mut out_a, at(1.0), StorageResult::Stored { key: "liveshop.order.ka".into() });
    a.handle_tab(&mut out_a, at(1.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    let outs = drain(&mut out_a);
    let post = fetches(&outs).pop().unwrap();
    for message in broadcasts(&outs) {
        b.handle_tab(&mut out_b, at(2.0), TabEvent::Message { message });
    }
    // B takes A's key and body.
    let outs = drain(&mut out_b);
    assert!(outs.contains(&Output::Storage(StorageOp::Delete { key: "liveshop.order.kb".into() })));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Storage(StorageOp::Put { key, .. }) if key == "liveshop.order.ka")));
    b.handle_storage(&mut out_b, at(3.0), StorageResult::Stored { key: "liveshop.order.ka".into() });

    answer(&mut a, &mut out_a, 50.0, post.id, 201, &[], r#"{"status":"won","orderId":"o9"}"#);
    for message in broadcasts(&drain(&mut out_a)) {
        b.handle_tab(&mut out_b, at(60.0), TabEvent::Message { message });
    }
    let r = b.result(bid).unwrap();
    assert_eq!((r.status, r.order_id.as_deref(), r.attempts), (OrderStatus::Won, Some("o9"), 0));
    // The lock B was waiting for comes after: handed straight back, nothing sent.
    b.handle_tab(&mut out_b, at(70.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    let outs = drain(&mut out_b);
    assert!(outs.contains(&Output::Tab(TabOp::Release { lock: "liveshop.order.p1".into() })));
    assert!(fetches(&outs).is_empty());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn the_same_key_never_goes_out_with_another_body() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 9), Out::default());
    let mut sent: HashMap<String, Vec<u8>> = HashMap::new();
    let mut record = |r: &Request| {
        if r.method == Method::Post {
            let key = header(r, "Idempotency-Key").unwrap().to_string();
            let body = r.body.clone().unwrap();
            assert_eq!(sent.entry(key).or_insert_with(|| body.clone()), &body);
        }
    };
    let r = bought(&mut c, &mut out, "p1", "k1");
    record(&r);
    // A second tap with another quantity joins; nothing new goes out.
    let mut more = intent("p1", "k2");
    more.quantity = 3;
    assert_eq!(c.buy(&mut out, at(1.0), more), Ok(1));
    assert!(fetches(&drain(&mut out)).is_empty());
    // A key already used cannot carry another order.
    assert!(matches!(c.buy(&mut out, at(1.0), intent("p2", "k1")), Err(OrderError::Invalid(_))));
    // Retries carry the first body.
    c.handle_end(&mut out, at(2.0), r.id, Err(network_error()));
    let d = c.poll_timeout().unwrap();
    c.handle_timeout(&mut out, d.at);
    record(&one_fetch(&mut out));
    assert_eq!(sent.len(), 1);
}

#[test]
fn without_faults_each_intent_sends_exactly_one_post() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 5), Out::default());
    let mut posts = 0;
    for i in 0..20 {
        let r = bought(&mut c, &mut out, &format!("p{i}"), &format!("k{i}"));
        posts += 1;
        if i % 2 == 0 {
            answer(&mut c, &mut out, 1.0, r.id, 200, &[], r#"{"status":"lost","orderId":"o"}"#);
        } else {
            answer(&mut c, &mut out, 1.0, r.id, 202, &[], r#"{"orderId":"o","attemptUrl":"/a","retryAfterMs":100}"#);
            c.handle_timeout(&mut out, at(101.0));
            let poll = one_fetch(&mut out);
            assert_eq!(poll.method, Method::Get);
            answer(&mut c, &mut out, 102.0, poll.id, 200, &[], r#"{"status":"won","orderId":"o"}"#);
        }
        posts += fetches(&drain(&mut out)).iter().filter(|r| r.method == Method::Post).count();
        assert!(c.result(i + 1).unwrap().status.is_final());
    }
    assert_eq!(posts, 20);
    assert!((1..=20).all(|i| c.result(i).unwrap().attempts == 1));
    assert_eq!(c.budget_tokens(), retry::MAX_TOKENS);
}

#[test]
fn a_tab_that_taps_after_another_started_sending_takes_its_key() {
    let (mut a, mut out_a) = (OrderClient::new(URL.into(), 1), Out::default());
    let (mut b, mut out_b) = (OrderClient::new(URL.into(), 2), Out::default());
    let sent = bought(&mut a, &mut out_a, "p1", "ka");
    // What A broadcast before its POST reaches B before B's tap.
    let message = Message {
        cue: "c1".into(),
        product: "p1".into(),
        key: "ka".into(),
        status: OrderStatus::Pending,
        order_id: None,
        body: String::from_utf8(sent.body.clone().unwrap()).unwrap(),
    };
    b.handle_tab(&mut out_b, at(1.0), TabEvent::Message { message: message.encode() });
    b.buy(&mut out_b, at(2.0), intent("p1", "kb")).unwrap();
    assert!(matches!(out_b.pop(), Some(Output::Storage(StorageOp::Put { key, .. })) if key == "liveshop.order.ka"));
    drain(&mut out_b);
    // The lock comes to B before A's answer does: B sends A's order, not a second one.
    b.handle_storage(&mut out_b, at(3.0), StorageResult::Stored { key: "liveshop.order.ka".into() });
    b.handle_tab(&mut out_b, at(3.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    let r = one_fetch(&mut out_b);
    assert_eq!((header(&r, "Idempotency-Key"), &r.body), (Some("ka"), &sent.body));
}

#[test]
fn an_order_the_storage_refuses_still_goes_out() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    c.buy(&mut out, at(0.0), intent("p1", "k1")).unwrap();
    let Some(Output::Storage(op)) = out.pop() else { panic!() };
    drain(&mut out);
    c.handle_tab(&mut out, at(1.0), TabEvent::Acquired { lock: "liveshop.order.p1".into() });
    c.handle_storage(&mut out, at(2.0), StorageResult::Failed { op, error: PlayerError::Driver("quota".into()) });
    assert_eq!(one_fetch(&mut out).method, Method::Post);
}

#[test]
fn a_resumed_list_skips_what_is_not_an_order_record() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    let entries = vec![("liveshop.order.x".to_string(), b"junk".to_vec())];
    c.handle_storage(&mut out, at(0.0), StorageResult::Listed { prefix: PREFIX.into(), entries });
    assert_eq!(drain(&mut out), []);
    assert_eq!(c.poll_event(), None);
}

#[test]
fn an_accepted_order_without_an_attempt_is_asked_again_under_the_same_key() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    let r = bought(&mut c, &mut out, "p1", "k1");
    answer(&mut c, &mut out, 0.0, r.id, 202, &[("retry-after", "0.5")], "");
    assert_eq!(c.poll_timeout().unwrap().at, at(500.0));
    c.handle_timeout(&mut out, at(500.0));
    let again = one_fetch(&mut out);
    assert_eq!((again.method, header(&again, "Idempotency-Key"), &again.body), (Method::Post, Some("k1"), &r.body));
}

#[test]
fn a_request_left_unanswered_is_abandoned_and_sent_again_with_the_same_key_and_body() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 1), Out::default());
    let first = bought(&mut c, &mut out, "p1", "k1");
    // The server took the connection and went silent: the deadline is the answer timeout.
    let deadline = c.poll_timeout().expect("a deadline while in flight");
    assert_eq!(deadline.at, at(ANSWER_TIMEOUT_MS));
    c.handle_timeout(&mut out, at(ANSWER_TIMEOUT_MS - 1.0));
    assert!(drain(&mut out).is_empty(), "not before the timeout");
    c.handle_timeout(&mut out, deadline.at);
    let outs = drain(&mut out);
    assert!(outs.contains(&Output::CancelFetch(first.id)), "{outs:?}");
    // After the backoff the client asks whether the server took it; nothing there: sent
    // again, byte for byte.
    let retry_at = c.poll_timeout().expect("a retry").at;
    assert!(retry_at > deadline.at && retry_at <= deadline.at + 250.0, "{retry_at:?}");
    c.handle_timeout(&mut out, retry_at);
    let lookup = one_fetch(&mut out);
    assert_eq!((lookup.method, lookup.url.as_str()), (Method::Get, "http://o/api/orders?key=k1"));
    answer(&mut c, &mut out, retry_at.get() + 1.0, lookup.id, 404, &[], r#"{"error":"no order under this key"}"#);
    let second = one_fetch(&mut out);
    assert_ne!(second.id, first.id);
    assert_eq!((header(&second, "Idempotency-Key"), &second.body), (Some("k1"), &first.body));
    // A late answer to the abandoned request is not taken for the new one's.
    answer(&mut c, &mut out, retry_at.get() + 5.0, first.id, 200, &[], r#"{"orderId":"o1","status":"won"}"#);
    assert_eq!(c.result(1).map(|r| r.status), Some(OrderStatus::Pending));
}

#[test]
fn a_lost_answer_is_looked_up_by_key_and_followed_never_posted_twice() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 5), Out::default());
    let post = bought(&mut c, &mut out, "p1", "k/1 é");
    // The server took it, and the answer was lost on the way.
    c.handle_end(&mut out, at(10.0), post.id, Err(network_error()));
    let d = c.poll_timeout().expect("a retry");
    c.handle_timeout(&mut out, d.at);
    let lookup = one_fetch(&mut out);
    assert_eq!(lookup.method, Method::Get);
    assert_eq!(lookup.url, "http://o/api/orders?key=k%2F1%20%C3%A9");
    assert_eq!(header(&lookup, "Authorization"), Some("Bearer tok"));
    assert_eq!(header(&lookup, "Idempotency-Key"), None);
    // A lookup lost too is asked again, still no POST.
    c.handle_end(&mut out, d.at, lookup.id, Err(network_error()));
    let d = c.poll_timeout().expect("a retry");
    c.handle_timeout(&mut out, d.at);
    let lookup = one_fetch(&mut out);
    assert_eq!(lookup.method, Method::Get);
    // Found, pending: followed at the order's own URL at the server's pace.
    answer(
        &mut c,
        &mut out,
        d.at.get(),
        lookup.id,
        200,
        &[("retry-after", "2")],
        r#"{"orderId":"o 9","status":"pending"}"#,
    );
    assert_eq!(c.poll_timeout().unwrap().at, d.at + 2000.0);
    c.handle_timeout(&mut out, d.at + 2000.0);
    let poll = one_fetch(&mut out);
    assert_eq!((poll.method, poll.url.as_str()), (Method::Get, "http://o/api/orders/o%209"));
    answer(&mut c, &mut out, d.at.get() + 2001.0, poll.id, 200, &[], r#"{"orderId":"o 9","status":"won"}"#);
    let r = last_status(&mut c);
    assert_eq!((r.status, r.order_id.as_deref(), r.attempts), (OrderStatus::Won, Some("o 9"), 1), "one POST");
}

/// Tab A's POST answered `status`, and what A broadcast on the way.
fn decided_elsewhere(product: &str, key: &str, status: &str) -> Vec<Vec<u8>> {
    let (mut a, mut out_a) = (OrderClient::new(URL.into(), 1), Out::default());
    let post = bought(&mut a, &mut out_a, product, key);
    answer(&mut a, &mut out_a, 50.0, post.id, 201, &[], &format!(r#"{{"status":"{status}","orderId":"o9"}}"#));
    drain(&mut out_a)
        .into_iter()
        .filter_map(|o| match o {
            Output::Tab(TabOp::Broadcast { message }) => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn a_tab_that_taps_after_another_tabs_order_was_decided_is_told_that_decision_and_sends_nothing() {
    let (mut b, mut out_b) = (OrderClient::new(URL.into(), 2), Out::default());
    for message in decided_elsewhere("p1", "ka", "won") {
        b.handle_tab(&mut out_b, at(60.0), TabEvent::Message { message });
    }
    // B's tap comes late (a slow sign-in): it is A's order, won, not a second ticket.
    let id = b.buy(&mut out_b, at(70.0), intent("p1", "kb")).unwrap();
    let outs = drain(&mut out_b);
    assert!(outs.is_empty(), "nothing written, locked or sent: {outs:?}");
    let r = last_status(&mut b);
    assert_eq!((r.status, r.order_id.as_deref(), r.attempts), (OrderStatus::Won, Some("o9"), 0));
    assert_eq!(b.result(id).unwrap().status, OrderStatus::Won);
    // A decision on an earlier sale of the product (another cue) does not hold a new one back.
    let mut next_sale = intent("p1", "kc");
    next_sale.cue_id = "c2".into();
    b.buy(&mut out_b, at(80.0), next_sale).unwrap();
    assert!(drain(&mut out_b)
        .iter()
        .any(|o| matches!(o, Output::Storage(StorageOp::Put { key, .. }) if key == "liveshop.order.kc")));
}

#[test]
fn tapping_again_after_the_decision_repeats_it_and_sends_nothing() {
    let (mut c, mut out) = (OrderClient::new(URL.into(), 3), Out::default());
    let post = bought(&mut c, &mut out, "p1", "k1");
    answer(&mut c, &mut out, 5.0, post.id, 200, &[], r#"{"status":"lost","orderId":"o1"}"#);
    drain(&mut out);
    events(&mut c);
    assert_eq!(c.buy(&mut out, at(9.0), intent("p1", "k2")), Ok(1));
    assert!(drain(&mut out).is_empty());
    assert_eq!(last_status(&mut c).status, OrderStatus::Lost);
    // An order this page could not place (no decision) is tried again on the next tap.
    let (mut d, mut out_d) = (OrderClient::new(URL.into(), 4), Out::default());
    let post = bought(&mut d, &mut out_d, "p1", "k1");
    answer(&mut d, &mut out_d, 5.0, post.id, 401, &[], "");
    drain(&mut out_d);
    d.buy(&mut out_d, at(9.0), intent("p1", "k2")).unwrap();
    assert!(drain(&mut out_d)
        .iter()
        .any(|o| matches!(o, Output::Storage(StorageOp::Put { key, .. }) if key == "liveshop.order.k2")));
}
