export { type Clock, systemClock, ManualClock, skewedClock } from './clock';
export { sleep } from './sleep';
