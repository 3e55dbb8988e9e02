// The output container in a data lake account (new or pre-existing) and the app's write access to that container
// alone: Blob Data Contributor scoped to the container, not the account, resource group or subscription.
@description('Existing storage account (ADLS Gen2 or Blob) in this resource group.')
param accountName string
param containerName string

@description('Principal id of the function app identity.')
param appPrincipalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: accountName
}

resource blobServices 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobServices
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource containerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, appPrincipalId, storageBlobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output accountUrl string = 'https://${account.name}.blob.${environment().suffixes.storage}'
output containerName string = container.name
