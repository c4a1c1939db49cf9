//! The kubelet's side of the CRI: the tonic clients `k8s-cri` generates, connected to a
//! throwaway skiffd's socket (the one Skiff's own API is served on).

use std::path::Path;

use anyhow::Result;
pub use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

/// The kubelet's message size limit, both ways.
const MAX_MESSAGE: usize = 16 << 20;

pub struct CriClients {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

pub async fn connect(socket: &Path) -> Result<CriClients> {
    let channel = skiff_api::connect(socket).await?;
    Ok(CriClients {
        runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE),
        images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE),
    })
}

/// An ImageSpec naming `image`.
pub fn image_spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec { image: image.to_string(), ..Default::default() })
}
