//! The bridge between the real ring code and the actor scheduler: every
//! `myelon_backend_sim::actor::suspend` call made from inside an actor's coroutine becomes a
//! coroutine suspension that hands the [`Suspend`] to the scheduler.
//!
//! Each actor runs on a stackful coroutine (corosensei) on the scheduler's own OS thread, so
//! one actor runs at a time and one seed is one trace. The yielder of the running coroutine is
//! kept in a thread-local: the body sets it when it starts, [`hook`] restores it after every
//! resumption (another actor ran meanwhile), and the scheduler clears it whenever control comes
//! back to it, so code the scheduler itself runs over the simulator never suspends.

use corosensei::Yielder;
use myelon_backend_sim::actor::{Resumed, Suspend};
use std::cell::Cell;

/// The yielder type of every actor coroutine.
pub type ActorYielder = Yielder<Resumed, Suspend>;

thread_local! {
    static CURRENT: Cell<*const ActorYielder> = const { Cell::new(std::ptr::null()) };
}

/// Marks `y` as the running actor's yielder (called by the coroutine body when it starts).
pub fn enter(y: &ActorYielder) {
    CURRENT.with(|c| c.set(y as *const ActorYielder));
}

/// No actor is running (called by the scheduler each time control comes back to it, and by the
/// body when it returns).
pub fn leave() {
    CURRENT.with(|c| c.set(std::ptr::null()));
}

/// The scheduler hook installed with `myelon_backend_sim::actor::set_hook`.
pub fn hook(s: Suspend) -> Option<Resumed> {
    let y = CURRENT.with(Cell::get);
    if y.is_null() {
        return None;
    }
    // `CURRENT` is non-null only while an actor's coroutine runs on this thread (the scheduler
    // clears it each time `resume` returns); it then points to that coroutine's yielder.
    // SAFETY: the yielder lives on the running coroutine's stack while its body runs, and this
    // call is made from inside that body: it is alive, and the right one to suspend.
    let r = unsafe { (*y).suspend(s) };
    // Back in this actor: another one may have run and set its own yielder.
    CURRENT.with(|c| c.set(y));
    Some(r)
}
