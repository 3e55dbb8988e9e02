// The data lake: a separate ADLS Gen2 account (hierarchical namespace) so data traffic and the data role stay apart
// from the host/Durable storage, and the app's write access can be limited to one container.
@minLength(3)
@maxLength(24)
param name string
param location string
param tags object = {}
param containerName string

@description('Principal id of the function app identity (gets Blob Data Contributor on the container only).')
param appPrincipalId string

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    isHnsEnabled: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Container and role live in their own module so an existing account (main.bicep) gets exactly the same treatment.
module container 'datalake-container.bicep' = {
  name: 'datalake-container'
  params: {
    accountName: lake.name
    containerName: containerName
    appPrincipalId: appPrincipalId
  }
}

output name string = lake.name
output accountUrl string = container.outputs.accountUrl
