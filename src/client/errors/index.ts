export { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';
export { InvalidBatchInputError } from './invalid-batch-input-error';
export { BatchRequestFailedError } from './batch-request-failed-error';
export { BatchFailedError } from './batch-failed-error';
export { BatchNotFoundError } from './batch-not-found-error';
export { MaritacaRequestError } from './maritaca-request-error';
export { InvalidBatchFileError, type BatchFileProblem } from '../../store/errors/invalid-batch-file-error';
export { BatchUpdateRefusedError } from './batch-update-refused-error';
export { BatchIdInUseError } from './batch-id-in-use-error';
