export { type Clock, systemClock, ManualClock, skewedClock } from './clock';
export { sleep } from './sleep';
export { FieldError, isFieldError, type FieldProblem } from './field-error';
export {
  ERROR_CLASSES,
  ERROR_CLASS_TABLE,
  errorClassesWhere,
  errorClassTraits,
  isErrorClass,
  type ErrorClass,
  type ErrorClassTraits,
} from './error-class';
export { isLoopbackHost } from './loopback';
export { jsonDepth, MAX_JSON_DEPTH } from './json-depth';
