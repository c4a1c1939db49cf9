//! The `RuntimeService` trait: each RPC handed to the code of its group.

use std::pin::Pin;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::CriRuntime;

type Answer<T> = Result<Response<T>, Status>;


#[tonic::async_trait]
impl RuntimeService for CriRuntime {
    async fn version(&self, _req: Request<cri::VersionRequest>) -> Answer<cri::VersionResponse> {
        Ok(Response::new(super::status::version()))
    }

    async fn status(&self, req: Request<cri::StatusRequest>) -> Answer<cri::StatusResponse> {
        Ok(Response::new(CriRuntime::status(self, req.get_ref().verbose)?))
    }

    async fn runtime_config(&self, _req: Request<cri::RuntimeConfigRequest>) -> Answer<cri::RuntimeConfigResponse> {
        Ok(Response::new(CriRuntime::runtime_config(self)))
    }

    async fn update_runtime_config(&self, req: Request<cri::UpdateRuntimeConfigRequest>) -> Answer<cri::UpdateRuntimeConfigResponse> {
        CriRuntime::update_runtime_config(self, req.into_inner())?;
        Ok(Response::new(cri::UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(&self, req: Request<cri::RunPodSandboxRequest>) -> Answer<cri::RunPodSandboxResponse> {
        let pod_sandbox_id = CriRuntime::run_pod_sandbox(self, req.into_inner()).await?;
        Ok(Response::new(cri::RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(&self, req: Request<cri::StopPodSandboxRequest>) -> Answer<cri::StopPodSandboxResponse> {
        CriRuntime::stop_pod_sandbox(self, &req.get_ref().pod_sandbox_id).await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(&self, req: Request<cri::RemovePodSandboxRequest>) -> Answer<cri::RemovePodSandboxResponse> {
        CriRuntime::remove_pod_sandbox(self, &req.get_ref().pod_sandbox_id).await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(&self, req: Request<cri::PodSandboxStatusRequest>) -> Answer<cri::PodSandboxStatusResponse> {
        Ok(Response::new(CriRuntime::pod_sandbox_status(self, req.get_ref())?))
    }

    async fn list_pod_sandbox(&self, req: Request<cri::ListPodSandboxRequest>) -> Answer<cri::ListPodSandboxResponse> {
        Ok(Response::new(cri::ListPodSandboxResponse { items: CriRuntime::list_pod_sandbox(self, req.get_ref()) }))
    }

    async fn create_container(&self, req: Request<cri::CreateContainerRequest>) -> Answer<cri::CreateContainerResponse> {
        let container_id = CriRuntime::create_container(self, req.into_inner()).await?;
        Ok(Response::new(cri::CreateContainerResponse { container_id }))
    }

    async fn start_container(&self, req: Request<cri::StartContainerRequest>) -> Answer<cri::StartContainerResponse> {
        CriRuntime::start_container(self, &req.get_ref().container_id).await?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }

    async fn stop_container(&self, req: Request<cri::StopContainerRequest>) -> Answer<cri::StopContainerResponse> {
        let req = req.into_inner();
        CriRuntime::stop_container(self, &req.container_id, req.timeout).await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }

    async fn remove_container(&self, req: Request<cri::RemoveContainerRequest>) -> Answer<cri::RemoveContainerResponse> {
        CriRuntime::remove_container(self, &req.get_ref().container_id).await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }

    async fn list_containers(&self, req: Request<cri::ListContainersRequest>) -> Answer<cri::ListContainersResponse> {
        Ok(Response::new(cri::ListContainersResponse { containers: CriRuntime::list_containers(self, req.get_ref())? }))
    }

    async fn container_status(&self, req: Request<cri::ContainerStatusRequest>) -> Answer<cri::ContainerStatusResponse> {
        Ok(Response::new(CriRuntime::container_status(self, req.get_ref())?))
    }

    async fn update_container_resources(&self, req: Request<cri::UpdateContainerResourcesRequest>) -> Answer<cri::UpdateContainerResourcesResponse> {
        CriRuntime::update_container_resources(self, req.into_inner()).await?;
        Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(&self, req: Request<cri::ReopenContainerLogRequest>) -> Answer<cri::ReopenContainerLogResponse> {
        CriRuntime::reopen_container_log(self, &req.get_ref().container_id).await?;
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, req: Request<cri::ExecSyncRequest>) -> Answer<cri::ExecSyncResponse> {
        Ok(Response::new(CriRuntime::exec_sync(self, req.into_inner()).await?))
    }

    async fn container_stats(&self, req: Request<cri::ContainerStatsRequest>) -> Answer<cri::ContainerStatsResponse> {
        Ok(Response::new(cri::ContainerStatsResponse { stats: Some(CriRuntime::container_stats(self, &req.get_ref().container_id).await?) }))
    }

    async fn list_container_stats(&self, req: Request<cri::ListContainerStatsRequest>) -> Answer<cri::ListContainerStatsResponse> {
        Ok(Response::new(cri::ListContainerStatsResponse { stats: CriRuntime::list_container_stats(self, req.into_inner().filter).await? }))
    }

    async fn pod_sandbox_stats(&self, req: Request<cri::PodSandboxStatsRequest>) -> Answer<cri::PodSandboxStatsResponse> {
        Ok(Response::new(cri::PodSandboxStatsResponse { stats: Some(CriRuntime::pod_sandbox_stats(self, &req.get_ref().pod_sandbox_id).await?) }))
    }

    async fn list_pod_sandbox_stats(&self, req: Request<cri::ListPodSandboxStatsRequest>) -> Answer<cri::ListPodSandboxStatsResponse> {
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats: CriRuntime::list_pod_sandbox_stats(self, req.into_inner().filter).await? }))
    }

    async fn exec(&self, req: Request<cri::ExecRequest>) -> Answer<cri::ExecResponse> {
        Ok(Response::new(CriRuntime::exec(self, req.into_inner()).await?))
    }

    async fn attach(&self, req: Request<cri::AttachRequest>) -> Answer<cri::AttachResponse> {
        Ok(Response::new(CriRuntime::attach(self, req.into_inner()).await?))
    }

    async fn port_forward(&self, req: Request<cri::PortForwardRequest>) -> Answer<cri::PortForwardResponse> {
        Ok(Response::new(CriRuntime::port_forward(self, req.into_inner()).await?))
    }

    async fn checkpoint_container(&self, _req: Request<cri::CheckpointContainerRequest>) -> Answer<cri::CheckpointContainerResponse> {
        Err(Status::unimplemented("CheckpointContainer: Skiff does not checkpoint containers (no CRIU support)"))
    }

    type GetContainerEventsStream = Pin<Box<dyn Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

    async fn get_container_events(&self, _req: Request<cri::GetEventsRequest>) -> Answer<Self::GetContainerEventsStream> {
        Ok(Response::new(Box::pin(self.container_events())))
    }

    async fn list_metric_descriptors(&self, _req: Request<cri::ListMetricDescriptorsRequest>) -> Answer<cri::ListMetricDescriptorsResponse> {
        Err(Status::unimplemented("ListMetricDescriptors: Skiff serves stats through ListContainerStats and ListPodSandboxStats, not the metrics RPCs"))
    }

    async fn list_pod_sandbox_metrics(&self, _req: Request<cri::ListPodSandboxMetricsRequest>) -> Answer<cri::ListPodSandboxMetricsResponse> {
        Err(Status::unimplemented("ListPodSandboxMetrics: Skiff serves stats through ListContainerStats and ListPodSandboxStats, not the metrics RPCs"))
    }
}
