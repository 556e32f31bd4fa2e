//! [`export_plugin!`](crate::export_plugin): turns plain [`Check`](crate::Check)
//! impls into an exported signet plugin library.

/// The exported symbol abi_stable's loader looks up; pinned by a unit test
/// against `abi_stable::library::ROOT_MODULE_LOADER_NAME`.
#[doc(hidden)]
#[macro_export]
macro_rules! __signet_root_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// Export one or more [`Check`](crate::Check) types from this `cdylib`.
///
/// ```ignore
/// signet_plugin_api::export_plugin!(CoolCheck, OtherCheck);
/// ```
///
/// Expands to the root module (api level, crate name and version, the check
/// list, a constructor dispatching on the check name) and the library header
/// abi_stable's loader looks for. Every call into the library — describing
/// checks, constructing one, every hook — runs under `catch_unwind`, so a panic
/// becomes an error of that check instead of aborting the gate. The library
/// needs only `signet-plugin-api` as a dependency, and must keep the default
/// `panic = "unwind"`.
#[macro_export]
macro_rules! export_plugin {
    ($($check:ty),+ $(,)?) => {
        const __SIGNET_ENTRIES: &[$crate::CheckEntry] = &[$($crate::CheckEntry::of::<$check>()),+];

        extern "C" fn __signet_checks() -> $crate::abi_stable::std_types::RResult<
            $crate::abi_stable::std_types::RVec<$crate::CheckDescriptor>,
            $crate::abi_stable::std_types::RString,
        > {
            $crate::author::__describe(__SIGNET_ENTRIES)
        }

        extern "C" fn __signet_new_check(
            name: $crate::abi_stable::std_types::RStr<'_>,
            config_json: $crate::abi_stable::std_types::RStr<'_>,
        ) -> $crate::abi_stable::std_types::RResult<$crate::FfiCheckBox, $crate::abi_stable::std_types::RString> {
            $crate::author::__new_check(__SIGNET_ENTRIES, name, config_json)
        }

        /// The root module of this signet plugin.
        pub fn signet_plugin_root() -> $crate::PluginModRef {
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::PluginMod {
                api_level: $crate::PLUGIN_API_LEVEL,
                library_name: $crate::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_NAME")),
                library_version: $crate::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                checks: __signet_checks,
                new_check: __signet_new_check,
            }
            .leak_into_prefix()
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(export_name = $crate::__signet_root_symbol!())]
        pub static __SIGNET_LIB_HEADER: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_root() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(signet_plugin_root)
            }
            // SAFETY: `erased_root` returns the root module of type `PluginModRef`,
            // exactly what this header declares; this mirrors what abi_stable's own
            // `#[export_root_module]` attribute expands to, with paths through
            // this crate so plugins need no direct abi_stable dependency.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::PluginModRef>(
                    erased_root,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_symbol_matches_abi_stable() {
        assert_eq!(
            crate::__signet_root_symbol!(),
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
