//! A connection's state, as three small machines: where it is in its life,
//! whether it is reading, and whether it is writing.
//!
//! Each machine is a plain enum with one pure transition function, so that
//! every state a connection can be in is named, and each table can be tested
//! on its own. The connection table ([`ConnTable`](super::ConnTable)) applies the
//! transitions and keeps the seed's `inputs` and `outputs` figures in step
//! with them: `inputs` counts connections whose [`Reading`] is
//! [`Reading::Active`], `outputs` those whose [`Writing`] is
//! [`Writing::AwaitingWritable`].

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// An outbound connection whose non-blocking connect has not completed.
    /// `then_close`: the handler asked to close it meanwhile; it closes once
    /// what was queued for it is written.
    Connecting { then_close: bool },
    /// Reading, handling and writing.
    Open,
    /// Closes once its output is written; reads and handles nothing more.
    Closing(Farewell),
    /// Its output is written and its sending side shut; what the peer still
    /// sends is read and discarded until the peer closes or the linger time
    /// passes (see `linger.rs`), so that the peer reads its answer rather
    /// than a reset.
    Lingering(Farewell),
    /// Closed and deregistered; the slot is freed at the end of the turn.
    Closed,
}

/// Why a connection that is waiting for its output to drain will close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Farewell {
    PeerClosed,
    ByHandler,
    /// Its bytes were refused; the reason waits in the connection.
    Refused,
}

impl Lifecycle {
    /// Whether it still counts as a connection (not yet closed).
    pub(crate) fn is_live(self) -> bool {
        self != Lifecycle::Closed
    }

    /// Whether it may be sent bytes: open, or connecting with no close asked.
    pub(crate) fn accepts_output(self) -> bool {
        matches!(
            self,
            Lifecycle::Open | Lifecycle::Connecting { then_close: false }
        )
    }
}

/// Whether a connection's READABLE events are acted on: its membership of
/// the seed's `inputs` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The connect has not completed; `paused`: the handler paused reading
    /// meanwhile, so it starts paused.
    NotYet { paused: bool },
    /// In `inputs`.
    Active,
    /// The inbound queue is full: READABLE removed until it drains.
    QueueFull,
    /// The handler paused it ([`Context::pause_reading`](crate::Context::pause_reading)).
    PausedByHandler,
    /// Both: the queue filled, then the handler paused it too.
    QueueFullAndPausedByHandler,
    /// The peer's end of input has been read.
    Ended,
    /// Its bytes were refused (the decoder's error, or a message over the
    /// maximum): nothing more is read; it closes once the messages before
    /// them are answered.
    Refused,
    /// The connection is closing or closed: nothing more is read.
    Stopped,
}

/// What can happen to a connection's reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadEvent {
    /// The outbound connect completed.
    Connected,
    /// The inbound queue reached its limits.
    QueueFilled,
    /// The inbound queue drained.
    QueueDrained,
    HandlerPause,
    HandlerResume,
    /// A read returned 0.
    InputEnded,
    /// The decoder refused the bytes.
    InputRefused,
    /// The connection starts closing, or closes.
    Stop,
}

impl Reading {
    /// The state after `event`. Events that do not apply leave it as it is.
    pub(crate) fn next(self, event: ReadEvent) -> Reading {
        use ReadEvent as E;
        use Reading as R;
        match (self, event) {
            // Closing and end of input win over everything.
            (_, E::Stop) => R::Stopped,
            (R::Stopped, _) => R::Stopped,
            (R::Refused, _) => R::Refused,
            (_, E::InputRefused) => R::Refused,
            (_, E::InputEnded) => R::Ended,
            (R::Ended, _) => R::Ended,

            (R::NotYet { paused: false }, E::Connected) => R::Active,
            (R::NotYet { paused: true }, E::Connected) => R::PausedByHandler,
            (R::NotYet { .. }, E::HandlerPause) => R::NotYet { paused: true },
            (R::NotYet { .. }, E::HandlerResume) => R::NotYet { paused: false },
            (R::NotYet { .. }, _) => self,

            (R::Active, E::QueueFilled) => R::QueueFull,
            (R::Active, E::HandlerPause) => R::PausedByHandler,
            (R::QueueFull, E::QueueDrained) => R::Active,
            (R::QueueFull, E::HandlerPause) => R::QueueFullAndPausedByHandler,
            (R::PausedByHandler, E::HandlerResume) => R::Active,
            (R::QueueFullAndPausedByHandler, E::HandlerResume) => R::QueueFull,
            (R::QueueFullAndPausedByHandler, E::QueueDrained) => R::PausedByHandler,
            _ => self,
        }
    }

    /// In `inputs`: READABLE wanted and acted on.
    pub(crate) fn is_active(self) -> bool {
        self == Reading::Active
    }

    /// Paused because the inbound queue is full (the handler's pause aside).
    pub(crate) fn is_queue_full(self) -> bool {
        matches!(
            self,
            Reading::QueueFull | Reading::QueueFullAndPausedByHandler
        )
    }
}

/// Whether a connection has output on its way: its membership of the seed's
/// `outputs` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writing {
    /// Nothing queued, or nothing the loop has yet to try.
    Idle,
    /// Output queued; the connection is on this turn's flush list.
    Queued,
    /// A write returned `WouldBlock`: in `outputs`, WRITABLE wanted.
    AwaitingWritable,
}

/// What can happen to a connection's writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteEvent {
    /// Bytes were queued for the peer.
    Queued,
    /// A flush wrote everything.
    Drained,
    /// A flush met `WouldBlock`.
    Blocked,
    /// The connection closed: its output is dropped.
    Closed,
}

impl Writing {
    /// The state after `event`.
    pub(crate) fn next(self, event: WriteEvent) -> Writing {
        use WriteEvent as E;
        use Writing as W;
        match (self, event) {
            (_, E::Closed | E::Drained) => W::Idle,
            (_, E::Blocked) => W::AwaitingWritable,
            // A connection in the writable set is flushed by its WRITABLE
            // event; trying before would only meet WouldBlock again.
            (W::AwaitingWritable, E::Queued) => W::AwaitingWritable,
            (_, E::Queued) => W::Queued,
        }
    }

    /// In `outputs`.
    pub(crate) fn is_awaiting_writable(self) -> bool {
        self == Writing::AwaitingWritable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReadEvent as E;
    use Reading as R;

    const READ_STATES: [Reading; 9] = [
        R::NotYet { paused: false },
        R::NotYet { paused: true },
        R::Active,
        R::QueueFull,
        R::PausedByHandler,
        R::QueueFullAndPausedByHandler,
        R::Ended,
        R::Refused,
        R::Stopped,
    ];
    const READ_EVENTS: [ReadEvent; 8] = [
        E::Connected,
        E::QueueFilled,
        E::QueueDrained,
        E::HandlerPause,
        E::HandlerResume,
        E::InputEnded,
        E::InputRefused,
        E::Stop,
    ];

    /// The whole reading table, row by row: (state, event) -> next state.
    #[test]
    fn reading_transition_table() {
        let not_yet = R::NotYet { paused: false };
        let not_yet_paused = R::NotYet { paused: true };
        #[rustfmt::skip]
        let table: [(Reading, [Reading; 8]); 9] = [
            // columns: Connected, QueueFilled, QueueDrained, HandlerPause,
            //          HandlerResume, InputEnded, InputRefused, Stop
            (not_yet, [R::Active, not_yet, not_yet, not_yet_paused, not_yet, R::Ended, R::Refused, R::Stopped]),
            (not_yet_paused, [R::PausedByHandler, not_yet_paused, not_yet_paused, not_yet_paused, not_yet, R::Ended, R::Refused, R::Stopped]),
            (R::Active, [R::Active, R::QueueFull, R::Active, R::PausedByHandler, R::Active, R::Ended, R::Refused, R::Stopped]),
            (R::QueueFull, [R::QueueFull, R::QueueFull, R::Active, R::QueueFullAndPausedByHandler, R::QueueFull, R::Ended, R::Refused, R::Stopped]),
            (R::PausedByHandler, [R::PausedByHandler, R::PausedByHandler, R::PausedByHandler, R::PausedByHandler, R::Active, R::Ended, R::Refused, R::Stopped]),
            (R::QueueFullAndPausedByHandler, [R::QueueFullAndPausedByHandler, R::QueueFullAndPausedByHandler, R::PausedByHandler, R::QueueFullAndPausedByHandler, R::QueueFull, R::Ended, R::Refused, R::Stopped]),
            (R::Ended, [R::Ended, R::Ended, R::Ended, R::Ended, R::Ended, R::Ended, R::Refused, R::Stopped]),
            (R::Refused, [R::Refused, R::Refused, R::Refused, R::Refused, R::Refused, R::Refused, R::Refused, R::Stopped]),
            (R::Stopped, [R::Stopped; 8]),
        ];
        for (state, row) in table {
            for (event, expected) in READ_EVENTS.into_iter().zip(row) {
                assert_eq!(state.next(event), expected, "{state:?} on {event:?}");
            }
        }
        assert_eq!(table.map(|(s, _)| s), READ_STATES, "every state has a row");
    }

    #[test]
    fn only_active_reading_is_in_inputs() {
        let active: Vec<Reading> = READ_STATES.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, [R::Active]);
        let full: Vec<Reading> = READ_STATES
            .into_iter()
            .filter(|s| s.is_queue_full())
            .collect();
        assert_eq!(full, [R::QueueFull, R::QueueFullAndPausedByHandler]);
        // A pause by the handler survives the queue draining, and the other
        // way round: neither side resumes what the other paused.
        let both = R::Active.next(E::QueueFilled).next(E::HandlerPause);
        assert!(!both.next(E::QueueDrained).is_active());
        assert!(!both.next(E::HandlerResume).is_active());
        assert!(both
            .next(E::QueueDrained)
            .next(E::HandlerResume)
            .is_active());
    }

    #[test]
    fn writing_transition_table() {
        use WriteEvent as WE;
        use Writing as W;
        let events = [WE::Queued, WE::Drained, WE::Blocked, WE::Closed];
        let table = [
            (W::Idle, [W::Queued, W::Idle, W::AwaitingWritable, W::Idle]),
            (
                W::Queued,
                [W::Queued, W::Idle, W::AwaitingWritable, W::Idle],
            ),
            (
                W::AwaitingWritable,
                [W::AwaitingWritable, W::Idle, W::AwaitingWritable, W::Idle],
            ),
        ];
        for (state, row) in table {
            for (event, expected) in events.into_iter().zip(row) {
                assert_eq!(state.next(event), expected, "{state:?} on {event:?}");
            }
        }
    }

    #[test]
    fn lifecycle_output_rules() {
        assert!(Lifecycle::Open.accepts_output());
        assert!(Lifecycle::Connecting { then_close: false }.accepts_output());
        assert!(!Lifecycle::Connecting { then_close: true }.accepts_output());
        assert!(!Lifecycle::Closing(Farewell::ByHandler).accepts_output());
        assert!(!Lifecycle::Lingering(Farewell::Refused).accepts_output());
        assert!(Lifecycle::Lingering(Farewell::Refused).is_live());
        assert!(!Lifecycle::Closed.accepts_output());
        assert!(Lifecycle::Closing(Farewell::PeerClosed).is_live());
        assert!(!Lifecycle::Closed.is_live());
    }
}
