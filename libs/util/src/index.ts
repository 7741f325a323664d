export { type Clock, systemClock, ManualClock, skewedClock } from './clock';
export { sleep } from './sleep';
export { isLoopbackHost } from './loopback';
