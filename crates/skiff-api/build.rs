fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["../../proto/skiff/v1/images.proto", "../../proto/skiff/v1/content.proto", "../../proto/skiff/v1/snapshots.proto", "../../proto/skiff/v1/containers.proto", "../../proto/skiff/v1/events.proto", "../../proto/skiff/v1/leases.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure().compile_protos(&protos, &["../../proto"])?;
    Ok(())
}
