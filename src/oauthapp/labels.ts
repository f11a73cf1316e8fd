export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedByValue = 'oauthapp-operator';
export const finalizerName = 'oauthapp.dev/state-cleanup';
export const rotateAnnotation = 'oauthapp.dev/rotate';
