/// The service allocates through mimalloc: request handling allocates many small short-lived
/// buffers, where glibc malloc costs more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    shared_model::service::main(&search_sync::SERVICE)
}
