export { type Clock, systemClock, ManualClock, skewedClock } from './clock';
export { sleep } from './sleep';
export { FieldError, isFieldError, type FieldProblem } from './field-error';
