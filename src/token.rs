//! Tokens and checked references to slab entries.
//!
//! `token = generation << 32 | index << 3 | kind`. The kind says which slab (or
//! listener) a token names; the generation is bumped on every registration and kept in
//! the entry, so an event or a timer for a socket that died, whose slot was reused,
//! carries a token that no longer matches and is ignored. This is the only place that
//! packs or unpacks a token.

use mio::Token;

/// What a token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The client listener.
    Listener,
    /// A client connection (slab index).
    Client,
    /// A backend connection (slab index).
    Backend,
    /// The admin listener.
    Admin,
    /// A DNS query socket (UDP, or a TCP fallback connection).
    Dns,
}

impl Kind {
    const fn bits(self) -> usize {
        match self {
            Kind::Listener => 0,
            Kind::Client => 1,
            Kind::Backend => 2,
            Kind::Admin => 3,
            Kind::Dns => 4,
        }
    }
}

/// Packs a token.
pub const fn encode(generation: u32, index: usize, kind: Kind) -> Token {
    Token(((generation as usize) << 32) | (index << 3) | kind.bits())
}

/// Unpacks a token into its kind and slab index (the generation is checked by
/// comparing the whole token with the entry's).
pub const fn decode(token: usize) -> (Kind, usize) {
    let kind = match token & 7 {
        0 => Kind::Listener,
        1 => Kind::Client,
        2 => Kind::Backend,
        3 => Kind::Admin,
        _ => Kind::Dns,
    };
    (kind, (token & 0xffff_ffff) >> 3)
}

/// A client slab entry named with its token (so a reused slot is never mistaken for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CRef {
    /// Slab index.
    pub index: usize,
    /// Token at the time the reference was taken.
    pub token: Token,
}

/// A backend slab entry named with its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BRef {
    /// Slab index.
    pub index: usize,
    /// Token at the time the reference was taken.
    pub token: Token,
}

/// A slab entry that carries the token it was registered with.
pub trait Tokened {
    /// Its token.
    fn token(&self) -> Token;
}

macro_rules! checked_ref {
    ($r:ty) => {
        impl $r {
            /// The entry this reference names, if it is still the same one (the one
            /// liveness check: slot present and token equal).
            #[inline]
            pub fn get<T: Tokened>(self, slab: &slab::Slab<T>) -> Option<&T> {
                slab.get(self.index).filter(|x| x.token() == self.token)
            }
            /// As `get`, mutably.
            #[inline]
            pub fn get_mut<T: Tokened>(self, slab: &mut slab::Slab<T>) -> Option<&mut T> {
                slab.get_mut(self.index).filter(|x| x.token() == self.token)
            }
            /// True while the named entry is alive.
            #[inline]
            pub fn alive<T: Tokened>(self, slab: &slab::Slab<T>) -> bool {
                self.get(slab).is_some()
            }
        }
    };
}
checked_ref!(CRef);
checked_ref!(BRef);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        let kinds = [
            Kind::Listener,
            Kind::Client,
            Kind::Backend,
            Kind::Admin,
            Kind::Dns,
        ];
        for kind in kinds {
            for (generation, index) in [(0, 0), (1, 7), (u32::MAX, (1 << 29) - 1)] {
                let t = encode(generation, index, kind);
                assert_eq!(decode(t.0), (kind, index), "{generation} {index} {kind:?}");
                assert_eq!((t.0 >> 32) as u32, generation);
            }
        }
    }

    struct E(Token);
    impl Tokened for E {
        fn token(&self) -> Token {
            self.0
        }
    }

    #[test]
    fn a_reference_to_a_reused_slot_is_dead() {
        let mut slab = slab::Slab::new();
        let old = encode(1, 0, Kind::Backend);
        let i = slab.insert(E(old));
        let r = BRef {
            index: i,
            token: old,
        };
        assert!(r.alive(&slab));
        slab.remove(i);
        assert!(!r.alive(&slab), "slot empty");
        let j = slab.insert(E(encode(2, 0, Kind::Backend)));
        assert_eq!(i, j, "the slot is reused");
        assert!(r.get(&slab).is_none() && r.get_mut(&mut slab).is_none());
    }

    #[test]
    fn a_reused_slot_gets_a_different_token() {
        let old = encode(41, 3, Kind::Client);
        let new = encode(42, 3, Kind::Client);
        assert_ne!(old, new);
        assert_eq!(decode(old.0), decode(new.0));
    }
}
