//! The one place a protocol's calls are spelled out: [`protocol!`] turns a
//! list of calls into everything that speaks them.
//!
//! From one entry per call (its variant name, method, arguments, answer
//! and contract) it makes:
//!
//! - the service trait (async, object-safe), which servers implement;
//! - a request enum (one variant per call, with its arguments) and an
//!   answer enum (one variant per call, with its value), both serde, which
//!   transports carry; a request's `Debug` names the call only, since
//!   arguments hold secrets;
//! - a dispatcher that serves a request with any service;
//! - a carrier trait, which a transport implements with one method,
//!   `call`, and a client that is the whole service over any carrier;
//! - a layer trait, whose methods all forward to `inner()` unless
//!   overridden, and the blanket impl that makes every layer a service:
//!   a wrapper writes only the calls it changes.
//!
//! An argument or an answer may carry serde attributes, which go on its
//! field in the request or answer enum: share data is marked to decode as
//! a slice of the frame that carried it ([`super::frame`]).
//!
//! So adding a call is one entry here plus its server logic (and the echo
//! service of the transport conformance suite, which answers every call).
//! Entries are appended, never reordered: bincode numbers variants by
//! position, and nodes of one version must understand each other.
//!
//! Which to use: a wrapper that changes some calls is a layer; one that
//! does the same to every call (counting, watching for failures), or whose
//! inner service may be missing, is a carrier over
//! [`serve`](crate::protocol::serve_storage).

/// See the module docs. `session` gives the doc of the trait's
/// `open_session`, which is not a wire call.
macro_rules! protocol {
    (
        $(#[$trait_meta:meta])*
        trait $Trait:ident;
        $(#[$session_meta:meta])*
        session;
        request $Req:ident;
        response $Resp:ident;
        serve $serve:ident;
        carrier $Carrier:ident;
        client $Client:ident;
        layer $Layer:ident;
        calls {
            $(
                $(#[$m:meta])*
                $V:ident => fn $f:ident($($(#[$am:meta])* $a:ident: $t:ty),* $(,)?) -> $(#[$rm:meta])* $r:ty;
            )*
        }
    ) => {
        $(#[$trait_meta])*
        #[::async_trait::async_trait]
        pub trait $Trait: Send + Sync {
            $(#[$session_meta])*
            fn open_session(
                &self,
                caller: &$crate::protocol::Caller,
            ) -> Option<::std::sync::Arc<dyn $Trait>> {
                let _ = caller;
                None
            }
            $(
                $(#[$m])*
                async fn $f(&self, $($a: $t),*) -> $crate::Result<$r>;
            )*
        }

        #[doc = concat!("One call of [`", stringify!($Trait), "`], as data: what a transport carries.")]
        #[derive(Clone, ::serde::Serialize, ::serde::Deserialize)]
        #[allow(missing_docs)]
        pub enum $Req {
            $(
                $(#[$m])*
                $V { $($(#[$am])* $a: $t),* },
            )*
        }

        #[doc = concat!("The answer to a [`", stringify!($Req), "`]: the variant of the same name.")]
        #[derive(Clone, Debug, ::serde::Serialize, ::serde::Deserialize)]
        #[allow(missing_docs)]
        pub enum $Resp {
            $( $V($(#[$rm])* $r), )*
        }

        impl $Req {
            /// The call's method name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$V { .. } => stringify!($f), )*
                }
            }
        }

        impl $Resp {
            /// The name of the call this answers.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$V(..) => stringify!($f), )*
                }
            }
        }

        // Arguments hold secrets: a request shows its call's name only.
        impl ::std::fmt::Debug for $Req {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        #[doc = concat!("Serve one [`", stringify!($Req), "`] with `service`.")]
        pub async fn $serve(service: &dyn $Trait, request: $Req) -> $crate::Result<$Resp> {
            Ok(match request {
                $( $Req::$V { $($a),* } => $Resp::$V(service.$f($($a),*).await?), )*
            })
        }

        #[doc = concat!(
            "What a transport implements to carry [`", stringify!($Trait),
            "`]: one method for every call. [`", stringify!($Client),
            "`] makes it the whole service again."
        )]
        #[::async_trait::async_trait]
        pub trait $Carrier: Send + Sync {
            /// Carry `request` to the service and bring back its answer.
            ///
            /// # Contract
            /// The answer is the variant of the request's call (anything
            /// else is treated as the peer's fault); the service's own
            /// errors come back with their kind, and a peer that cannot be
            /// reached gives `Unavailable` or `Timeout`.
            async fn call(&self, request: $Req) -> $crate::Result<$Resp>;
        }

        #[::async_trait::async_trait]
        impl<C: $Carrier + ?Sized> $Carrier for ::std::sync::Arc<C> {
            async fn call(&self, request: $Req) -> $crate::Result<$Resp> {
                (**self).call(request).await
            }
        }

        #[doc = concat!("[`", stringify!($Trait), "`] over a [`", stringify!($Carrier), "`]: each method is one `call`.")]
        pub struct $Client<C>(pub C);

        #[::async_trait::async_trait]
        impl<C: $Carrier> $Trait for $Client<C> {
            $(
                async fn $f(&self, $($a: $t),*) -> $crate::Result<$r> {
                    match $Carrier::call(&self.0, $Req::$V { $($a),* }).await? {
                        $Resp::$V(v) => Ok(v),
                        #[allow(unreachable_patterns)]
                        other => Err($crate::protocol::mismatched(stringify!($f), other.name())),
                    }
                }
            )*
        }

        #[doc = concat!(
            "A wrapper of another [`", stringify!($Trait),
            "`]: every call goes to [`inner`](", stringify!($Layer),
            "::inner) unless the wrapper overrides it, and every layer is a [`",
            stringify!($Trait), "`]."
        )]
        #[::async_trait::async_trait]
        pub trait $Layer: Send + Sync {
            /// The wrapped service.
            fn inner(&self) -> &dyn $Trait;

            /// `None` unless overridden: a layer serves every connection
            /// itself (handing out the inner service's session would
            /// bypass the layer).
            fn open_session(
                &self,
                caller: &$crate::protocol::Caller,
            ) -> Option<::std::sync::Arc<dyn $Trait>> {
                let _ = caller;
                None
            }

            $(
                $(#[$m])*
                async fn $f(&self, $($a: $t),*) -> $crate::Result<$r> {
                    self.inner().$f($($a),*).await
                }
            )*
        }

        #[::async_trait::async_trait]
        impl<L: $Layer> $Trait for L {
            fn open_session(
                &self,
                caller: &$crate::protocol::Caller,
            ) -> Option<::std::sync::Arc<dyn $Trait>> {
                $Layer::open_session(self, caller)
            }
            $(
                async fn $f(&self, $($a: $t),*) -> $crate::Result<$r> {
                    $Layer::$f(self, $($a),*).await
                }
            )*
        }
    };
}

pub(crate) use protocol;
