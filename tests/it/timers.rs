//! Timers driven by a real loop: order, repetition, cancellation, never early.

use crate::util;

use util::BackendKind;

use std::time::{Duration, Instant};

use selectloop::{Config, ConnId, Context, Handler, Reactor, TimerId};

#[derive(Default)]
struct Clock {
    started: Option<Instant>,
    /// (label, when it was set to fire, when it fired)
    fired: Vec<(&'static str, Instant, Instant)>,
    labels: Vec<(TimerId, &'static str, Instant)>,
    periodic: Option<TimerId>,
    ticks: u32,
    to_cancel_from_hook: Option<TimerId>,
}

impl Handler for Clock {
    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, _msg: &[u8]) {}

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        let now = Instant::now();
        if Some(timer) == self.periodic {
            self.ticks += 1;
            if self.ticks == 5 {
                assert!(cx.cancel_timer(timer));
            }
            return;
        }
        let &(_, label, due) = self
            .labels
            .iter()
            .find(|(id, _, _)| *id == timer)
            .expect("fired timer was set by the test");
        self.fired.push((label, due, now));
        if label == "first" {
            // Cancelling a timer that is due in this same batch stops it.
            if let Some(victim) = self.to_cancel_from_hook.take() {
                assert!(cx.cancel_timer(victim));
            }
        }
        if label == "stop" {
            cx.stop();
        }
    }
}

fn set(reactor: &mut Reactor, clock: &mut Clock, label: &'static str, after_ms: u64) -> TimerId {
    let after = Duration::from_millis(after_ms);
    let due = Instant::now() + after;
    let id = reactor.context().set_timer(after);
    clock.labels.push((id, label, due));
    id
}

fn timers_fire_in_deadline_order_never_early_and_cancelled_ones_never(backend: BackendKind) {
    util::init_logger();
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let mut clock = Clock {
        started: Some(Instant::now()),
        ..Clock::default()
    };
    // Set out of order on purpose.
    set(&mut reactor, &mut clock, "third", 60);
    set(&mut reactor, &mut clock, "first", 20);
    let cancelled = set(&mut reactor, &mut clock, "cancelled", 40);
    set(&mut reactor, &mut clock, "second", 40);
    set(&mut reactor, &mut clock, "stop", 120);
    assert!(reactor.context().cancel_timer(cancelled));
    assert!(
        !reactor.context().cancel_timer(cancelled),
        "cancelled twice"
    );
    clock.periodic = Some(reactor.context().set_periodic(Duration::from_millis(10)));

    reactor.run(&mut clock).unwrap();

    let order: Vec<&str> = clock.fired.iter().map(|(label, _, _)| *label).collect();
    assert_eq!(order, ["first", "second", "third", "stop"]);
    for (label, due, fired) in &clock.fired {
        assert!(fired >= due, "{label} fired {:?} early", *due - *fired);
    }
    assert_eq!(clock.ticks, 5, "periodic timer repeats until cancelled");
    assert!(clock.started.unwrap().elapsed() >= Duration::from_millis(120));
}
per_backend!(timers_fire_in_deadline_order_never_early_and_cancelled_ones_never);

fn a_hook_can_cancel_a_timer_due_in_the_same_turn(backend: BackendKind) {
    util::init_logger();
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let mut clock = Clock::default();
    set(&mut reactor, &mut clock, "first", 10);
    let victim = set(&mut reactor, &mut clock, "victim", 10);
    set(&mut reactor, &mut clock, "stop", 30);
    clock.to_cancel_from_hook = Some(victim);
    // Sleep past both deadlines so they come due in the same turn.
    std::thread::sleep(Duration::from_millis(15));
    reactor.run(&mut clock).unwrap();
    let order: Vec<&str> = clock.fired.iter().map(|(label, _, _)| *label).collect();
    assert_eq!(order, ["first", "stop"]);
}
per_backend!(a_hook_can_cancel_a_timer_due_in_the_same_turn);

fn poll_sleeps_until_the_next_timer_instead_of_spinning(backend: BackendKind) {
    util::init_logger();
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let mut clock = Clock::default();
    set(&mut reactor, &mut clock, "stop", 50);
    reactor.run(&mut clock).unwrap();
    // A 50 ms wait with no sockets active takes a handful of turns, not
    // thousands (the poll timeout is the time to the deadline).
    assert!(
        reactor.stats().turns <= 5,
        "{} turns",
        reactor.stats().turns
    );
}
per_backend!(poll_sleeps_until_the_next_timer_instead_of_spinning);

/// `set_periodic(Duration::ZERO)` used to reschedule the timer at `now + 0`
/// forever inside one turn: the loop hung and its memory grew without end.
/// The period is raised to `MIN_PERIOD`, so the timer ticks and the loop
/// still turns.
fn a_zero_period_ticks_instead_of_hanging_the_loop(backend: BackendKind) {
    util::init_logger();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        struct Ticks(u32);
        impl Handler for Ticks {
            fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, _: &[u8]) {}
            fn on_timer(&mut self, cx: &mut Context<'_>, _: TimerId) {
                self.0 += 1;
                if self.0 == 20 {
                    cx.stop();
                }
            }
        }
        let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
        reactor.context().set_periodic(Duration::ZERO);
        let mut ticks = Ticks(0);
        let started = Instant::now();
        reactor.run(&mut ticks).unwrap();
        let _ = done_tx.send((ticks.0, started.elapsed(), reactor.stats().turns));
    });
    let (ticks, took, turns) = done_rx
        .recv_timeout(util::PATIENCE)
        .expect("the loop hung on a zero period");
    assert_eq!(ticks, 20);
    assert!(took >= selectloop::MIN_PERIOD * 19, "20 ticks in {took:?}");
    assert!(turns >= 20, "one tick per turn at most, {turns} turns");
}
per_backend!(a_zero_period_ticks_instead_of_hanging_the_loop);

/// Turns `reactor` until `done` says so, 2,000 turns of at most 5 ms at
/// most.
fn turn_until<H: Handler + 'static>(
    reactor: &mut Reactor,
    handler: &mut H,
    done: impl Fn(&H) -> bool,
) {
    for _ in 0..2_000 {
        if done(handler) {
            return;
        }
        reactor
            .run_once(handler, Some(Duration::from_millis(5)))
            .unwrap();
    }
    panic!("not done after 2,000 turns");
}

/// Timers that say what they are for: a value handed to `on_timer_value`,
/// and a timer without one still reaching `on_timer`.
#[derive(Default)]
struct Errands {
    done: Vec<String>,
    plain: u32,
}

impl Handler for Errands {
    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, _msg: &[u8]) {}

    fn on_timer(&mut self, _cx: &mut Context<'_>, _timer: TimerId) {
        self.plain += 1;
    }

    fn on_timer_value(
        &mut self,
        cx: &mut Context<'_>,
        timer: TimerId,
        value: Box<dyn std::any::Any>,
    ) {
        match value.downcast::<String>() {
            Ok(errand) => self.done.push(*errand),
            Err(_) => self.on_timer(cx, timer),
        }
    }
}

#[test]
fn a_timer_carries_its_value_to_the_handler() {
    let mut reactor = Reactor::new().unwrap();
    let mut errands = Errands::default();
    let mut cx = reactor.context();
    cx.set_timer_with(Duration::from_millis(2), String::from("water the plants"));
    let cancelled = cx.set_timer_with(Duration::from_millis(1), String::from("never"));
    cx.set_timer_with(Duration::from_millis(3), 42u32); // not a String
    cx.set_timer(Duration::from_millis(1));
    assert!(cx.cancel_timer(cancelled));
    turn_until(&mut reactor, &mut errands, |e| e.plain == 2);
    assert_eq!(errands.done, ["water the plants"]);
    assert_eq!(reactor.stats().timers_fired, 3);
}

/// A handler that knows nothing of values hears of a timer that carries
/// one through `on_timer`, the default.
#[test]
fn a_timer_value_reaches_on_timer_by_default() {
    struct Ticks(u32);
    impl Handler for Ticks {
        fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, _: &[u8]) {}
        fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId) {
            self.0 += 1;
        }
    }
    let mut reactor = Reactor::new().unwrap();
    reactor
        .context()
        .set_timer_with(Duration::from_millis(1), "a value");
    let mut ticks = Ticks(0);
    turn_until(&mut reactor, &mut ticks, |t| t.0 == 1);
}

/// Closures in place of the handler's hook: one that runs once, one that
/// runs until it cancels itself, one cancelled before it ran.
#[test]
fn closures_run_after_and_every_until_cancelled() {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    let mut reactor = Reactor::new().unwrap();
    let once = Rc::new(Cell::new(0));
    let every = Rc::new(Cell::new(0));
    let never = Rc::new(Cell::new(0));
    let mut cx = reactor.context();
    let counted = once.clone();
    cx.call_after(Duration::from_millis(1), move |_| {
        counted.set(counted.get() + 1)
    });
    let counted = never.clone();
    let cancelled = cx.call_after(Duration::from_millis(1), move |_| counted.set(1));
    assert!(cx.cancel_timer(cancelled));
    let counted = every.clone();
    let own_id = Rc::new(RefCell::new(None::<TimerId>));
    let own = own_id.clone();
    let periodic = cx.call_every(Duration::from_millis(1), move |cx| {
        counted.set(counted.get() + 1);
        if counted.get() == 3 {
            let id = own.borrow().expect("set before it first ran");
            assert!(cx.cancel_timer(id));
        }
    });
    *own_id.borrow_mut() = Some(periodic);
    let mut nothing = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
    turn_until(&mut reactor, &mut nothing, |_| every.get() == 3);
    // A few more turns: the periodic closure cancelled itself for good.
    for _ in 0..5 {
        reactor
            .run_once(&mut nothing, Some(Duration::from_millis(2)))
            .unwrap();
    }
    assert_eq!((once.get(), every.get(), never.get()), (1, 3, 0));
    assert!(!reactor.context().timer_pending(periodic));
}
